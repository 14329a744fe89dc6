"""What each workflow rule does, as plain functions (the scripts in workflow/scripts/ are
thin adapters around these, and tests call them directly)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

import torch

from . import data as datasets
from . import memory
from .config import resolve_path
from .device import apply_device_settings, device_memory_budget, max_array_bytes, resolve_device
from .models import ModelFamily, family_for_device
from .trainer import TensorData, TrainSettings, train_trials, trial_seed
from .zoo import merge_job_files, write_job_file

log = logging.getLogger(__name__)


def prepare_data(dataset: str, out_path, data_config: Mapping, root=".") -> None:
    """``root``: what a relative ``data_dir`` is relative to (the repository; the job itself
    runs in the config's run directory)."""
    datasets.prepare_dataset(
        dataset,
        out_path,
        data_dir=resolve_path(data_config.get("data_dir"), root),
        download=data_config.get("download", True),
        verify_checksums=data_config.get("verify_checksums", True),
        log=log.info,
    )


def load_tensor_data(
    path, settings: TrainSettings, device: torch.device | None = None
) -> TensorData:
    prepared = datasets.load_prepared(path)
    device = device or resolve_device(settings.device, settings.dtype)
    return TensorData.from_arrays(
        prepared.x_train,
        prepared.y_train,
        prepared.x_test,
        prepared.y_test,
        prepared.pixel_max,
        prepared.num_classes,
        dtype=settings.torch_dtype,
        device=device,
    )


def size_job(
    job: Mapping,
    family: ModelFamily,
    data: TensorData,
    settings: TrainSettings,
    device_memory_mb: int | str = "auto",
) -> dict:
    """How the job's trials fit the device: ``max_trials`` per sub-ensemble and
    ``eval_chunk`` (test samples per evaluation chunk), None = no limit. Raises
    :class:`weightzoo.memory.JobTooLarge` before any training where one trial does not fit."""
    device = data.x_train.device
    budget = device_memory_budget(device, device_memory_mb)
    if budget is not None:  # the dataset lives on the device too
        budget -= sum(
            t.numel() * t.element_size() for t in vars(data).values() if torch.is_tensor(t)
        )
    array_limit = max_array_bytes(device)
    if budget is None and array_limit is None:  # the CPU by default: as before, no sizing
        return {"max_trials": None, "eval_chunk": None, "budget_mb": None}
    step = memory.step_memory(
        family,
        job["arch"],
        data.input_shape,
        data.num_classes,
        settings.batch_size,
        settings.torch_dtype,
    )
    cap = memory.check_fits(job["experiment"], job["arch_name"], step, budget, array_limit)
    n_trials = job["stop"] - job["start"]
    per_ensemble = n_trials if cap is None else min(cap, n_trials)
    return {
        "max_trials": cap if cap is not None and cap < n_trials else None,
        "eval_chunk": memory.eval_chunk_samples(step, per_ensemble, budget, array_limit),
        "budget_mb": None if budget is None else memory.mb(budget),
        "estimated_step_mb": memory.mb(step.training_bytes(per_ensemble)),
    }


def train_job(
    job: Mapping,
    base_seed: int,
    settings: Mapping,
    data_path,
    out_path,
    progress_file=sys.stderr,
    device_memory_mb: int | str = "auto",
) -> None:
    """Train the trials ``job['start']..job['stop']-1`` of one architecture; write its HDF5."""
    settings = TrainSettings(**settings)
    device = resolve_device(settings.device, settings.dtype)
    # before the first CUDA op: cuBLAS reads its workspace setting when it starts
    device_settings = apply_device_settings(device, settings.allow_tf32)
    data = load_tensor_data(data_path, settings, device)
    trial_ids = list(range(job["start"], job["stop"]))
    seeds = [trial_seed(base_seed, job["experiment"], job["arch_name"], i) for i in trial_ids]
    log.info(
        "training %d trials of %s %s on %s (device %s, dtype %s)",
        len(seeds),
        job["experiment"],
        job["arch_name"],
        job["dataset"],
        data.x_train.device,
        settings.dtype,
    )
    family = family_for_device(job["model"], settings.strategy, data.x_train.device)
    sizing = size_job(job, family, data, settings, device_memory_mb)
    if sizing["max_trials"] is not None:
        log.info(
            "%s %s: %d trials do not fit the device's %s MB at once; training them in "
            "sub-ensembles of %d (execution.device_memory_mb)",
            job["experiment"],
            job["arch_name"],
            len(seeds),
            sizing["budget_mb"],
            sizing["max_trials"],
        )
    result = train_trials(
        family,
        job["arch"],
        seeds,
        data,
        settings,
        progress_file=progress_file,
        desc=f"{job['arch_name']} {len(seeds)} trials",
        max_trials=sizing["max_trials"],
        eval_chunk=sizing["eval_chunk"],
    )
    result.settings["resolved_device"] = str(data.x_train.device)
    result.settings["resolved_strategy"] = getattr(family, "strategy", "batched")
    result.settings["device_settings"] = {**device_settings, "memory": sizing}
    trials = result.to_arch_trials(job["arch_name"], job["arch"], trial_ids, seeds)
    write_job_file(
        out_path,
        trials,
        {
            "experiment": job["experiment"],
            "model": job["model"],
            "dataset": job["dataset"],
            "config": {"job": dict(job), "seed": base_seed},
        },
    )
    log.info(
        "diverged: %d of %d; wrote %s", int(trials.trials["diverged"].sum()), len(seeds), out_path
    )


def merge_zoo(job_paths, out_path, experiment_config: Mapping) -> None:
    zoo = merge_job_files(job_paths, out_path, experiment_config)
    log.info(
        "merged %d job files: %s",
        len(list(job_paths)),
        ", ".join(f"{a.arch_name} ({a.n_trials} trials)" for a in zoo.archs),
    )


def assign_groups(zoo_path, out_path, bands: Mapping | None, groups_config: Mapping) -> None:
    """Group one experiment's trials; ``groups_config`` is the experiment's ``groups``
    settings (:func:`weightzoo.config.group_settings`)."""
    from . import groups
    from .zoo import read_zoo

    zoo = read_zoo(zoo_path)
    method = groups_config.get("method", "bands")
    table = groups.assign_groups(
        zoo.trials_table(),
        bands,
        accuracy=groups_config.get("accuracy", "test"),
        chance_tolerance=groups_config.get("chance_tolerance", 2.0),
        method=method,
        relative=groups_config.get("relative"),
    )
    groups.write_groups_csv(table, out_path)
    if method == "relative":
        converged = (table["group"] != "non").to_numpy()
        edges = groups.relative_edges(
            table["group_acc_pct"].to_numpy(float),
            converged,
            groups_config.get("relative") or groups.DEFAULT_RELATIVE,
        )
        log.info("%s: relative bands in this zoo, percent: %s", zoo.experiment, edges)
    log.info("%s (%s): %s", zoo.experiment, method, groups.group_counts(table))


def table2(group_paths, csv_path, md_path) -> None:
    from . import groups

    df = groups.table2([groups.read_groups_csv(p) for p in group_paths])
    groups.write_table2(df, csv_path, md_path)
    log.info("Table 2: %d rows from %d experiments", len(df), len(list(group_paths)))


# config `figures:` keys -> keyword of the figure modules' make(); a module gets the ones
# its make() accepts
FIGURE_OPTIONS = {
    "tsne_descriptor": "descriptor",
    "n_quantiles": "n_quantiles",
    "kde_max_points": "max_samples",
    "seed": "seed",
}


def figure_kwargs(make, options: Mapping) -> dict:
    import inspect

    accepted = inspect.signature(make).parameters
    return {
        FIGURE_OPTIONS[k]: v
        for k, v in options.items()
        if k in FIGURE_OPTIONS and FIGURE_OPTIONS[k] in accepted
    }


def group_rules_of(sources, group_paths) -> dict[str, str]:
    """Experiment -> the rule that made its groups (``bands`` / ``relative``), from the
    features tables among ``sources`` and from the groups files."""
    import pandas as pd

    from .groups import read_groups_csv

    tables = [
        pd.read_parquet(p, columns=["experiment", "group_rule"])
        for p in sources
        if str(p).endswith(".parquet")
    ]
    tables += [read_groups_csv(p)[["experiment", "group_rule"]] for p in group_paths]
    if not tables:
        return {}
    rules = pd.concat(tables, ignore_index=True).drop_duplicates()
    return rules.groupby("experiment", sort=False)["group_rule"].agg(",".join).to_dict()


def draw_figure(
    module: str, sources, group_paths, out_pdf, out_png, options: Mapping, number: int
) -> None:
    """Draw the paper's figure ``number`` with ``module`` (one module draws e.g. Figs 2-4)
    from ``sources``: zoo files (with ``group_paths``) or features tables, as the module
    reads (:mod:`weightzoo.figures.registry`)."""
    import importlib

    from .figures.common import state_group_rules

    make = importlib.import_module(f"weightzoo.figures.{module}").make
    kwargs = {**figure_kwargs(make, options), "number": number}
    state_group_rules(group_rules_of(sources, group_paths))  # every caption names them
    log.info("drawing %s from %d experiments with %s", module, len(list(sources)), kwargs)
    make(list(sources), list(group_paths), str(out_pdf), str(out_png), **kwargs)


def predict(features_path, results_path, oof_path) -> None:
    """Accuracy predicted from one experiment's features table (issue 9 §3)."""
    import pandas as pd

    from .analysis import predict as p

    results, oof = p.predict_experiment(pd.read_parquet(features_path))
    p.write_predictions(results, oof, results_path, oof_path)
    for _, r in results.iterrows():
        log.info(
            "%s %s %s: %s",
            r["features"],
            r["regressor"],
            r["validation"],
            r["reason"] if r["status"] != "ok" else f"R² {r['r2']:.3f}, τ {r['kendall_tau']:.3f}",
        )


def predict_early(features_path, out_path, epochs: int | None = None) -> None:
    """How early a trial's fate shows (issue 10 §3): ``<experiment>.early.csv``."""
    import pandas as pd

    from .analysis import predict as p

    table = p.predict_early(pd.read_parquet(features_path), epochs)
    p.write_early(table, out_path)
    for _, r in table[table["status"] == "ok"].iterrows():
        metric = "roc_auc" if r["target"] == "high" else "r2"
        log.info(
            "%s %s %s %s: %s %.3f",
            r["state"],
            r["target"],
            r["estimator"],
            r["validation"],
            metric,
            r[metric],
        )


def predict_early_figure(early_path, out_pdf, out_png) -> None:
    from .figures import early as fig

    fig.make(early_path, str(out_pdf), str(out_png))


def predict_table(result_paths, md_path) -> None:
    from .analysis import predict as p

    p.write_markdown([p.read_results(path) for path in result_paths], md_path)


def predict_figure(results_path, oof_path, out_pdf, out_png) -> None:
    from .figures import predict as fig

    fig.make(results_path, oof_path, str(out_pdf), str(out_png))


def features(zoo_path, groups_path, out_path, spectral: bool = True) -> None:
    """The features table of one experiment (``results/features/<experiment>.parquet``);
    ``spectral``: WeightWatcher's columns too (config ``features.spectral``)."""
    from .analysis.features import features_from_file, write_features
    from .groups import read_groups_csv

    df = features_from_file(zoo_path, read_groups_csv(groups_path), spectral=spectral)
    write_features(df, out_path)
    log.info(
        "%s: %d rows (%d trials x layers x states), %d non-finite rows; wrote %s",
        df["experiment"].iat[0] if len(df) else zoo_path,
        len(df),
        df["trial"].nunique(),
        int(df["nonfinite"].sum()),
        out_path,
    )
    flagged = df.groupby(["layer", "state"], sort=False)["ww_unreliable"].agg(["sum", "size"])
    for (layer, state), r in flagged.iterrows():  # the README counts the excluded layers
        log.info("spectral %s %s: %d of %d fits flagged unreliable", layer, state, *r)


def claims(feature_paths, csv_path, md_path, claims_config: Mapping, accuracy: str) -> None:
    """The paper's claims tested on every experiment's features table (docs/claims.md)."""
    import pandas as pd

    from .analysis.claims import ClaimSettings, test_claims, write_claims
    from .analysis.features import read_features

    settings = ClaimSettings.from_config(claims_config, accuracy)
    features = pd.concat([read_features(p) for p in feature_paths], ignore_index=True)
    table = test_claims(features, settings)
    write_claims(table, csv_path, md_path, settings)
    log.info(
        "%d rows from %d experiments (%s); verdicts: %s; wrote %s, %s",
        len(table),
        len(list(feature_paths)),
        settings,
        table["verdict"].value_counts().to_dict(),
        csv_path,
        md_path,
    )


def claims_figure(csv_path, out_pdf, out_png) -> None:
    from .analysis.claims import read_claims
    from .figures.claims import make

    make(read_claims(csv_path), out_pdf, out_png)
    log.info("drew the claims summary: %s, %s", out_pdf, out_png)
