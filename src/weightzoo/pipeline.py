"""What each workflow rule does, as plain functions (the scripts in workflow/scripts/ are
thin adapters around these, and tests call them directly)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from . import data as datasets
from .models import family_for_device
from .trainer import TensorData, TrainSettings, resolve_device, train_trials, trial_seed
from .zoo import merge_job_files, write_job_file

log = logging.getLogger(__name__)


def prepare_data(dataset: str, out_path, data_config: Mapping) -> None:
    datasets.prepare_dataset(
        dataset,
        out_path,
        data_dir=data_config.get("data_dir"),
        download=data_config.get("download", True),
        verify_checksums=data_config.get("verify_checksums", True),
        log=log.info,
    )


def load_tensor_data(path, settings: TrainSettings) -> TensorData:
    prepared = datasets.load_prepared(path)
    device = resolve_device(settings.device)
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


def train_job(
    job: Mapping, base_seed: int, settings: Mapping, data_path, out_path, progress_file=sys.stderr
) -> None:
    """Train the trials ``job['start']..job['stop']-1`` of one architecture; write its HDF5."""
    settings = TrainSettings(**settings)
    data = load_tensor_data(data_path, settings)
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
    result = train_trials(
        family,
        job["arch"],
        seeds,
        data,
        settings,
        progress_file=progress_file,
        desc=f"{job['arch_name']} {len(seeds)} trials",
    )
    result.settings["resolved_device"] = str(data.x_train.device)
    result.settings["resolved_strategy"] = getattr(family, "strategy", "batched")
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


def assign_groups(zoo_path, out_path, bands: Mapping, groups_config: Mapping) -> None:
    from . import groups
    from .zoo import read_zoo

    zoo = read_zoo(zoo_path)
    table = groups.assign_groups(
        zoo.trials_table(),
        bands,
        accuracy=groups_config.get("accuracy", "test"),
        chance_tolerance=groups_config.get("chance_tolerance", 2.0),
    )
    groups.write_groups_csv(table, out_path)
    log.info("%s: %s", zoo.experiment, groups.group_counts(table))


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


def draw_figure(
    module: str, sources, group_paths, out_pdf, out_png, options: Mapping, number: int
) -> None:
    """Draw the paper's figure ``number`` with ``module`` (one module draws e.g. Figs 2-4)
    from ``sources``: zoo files (with ``group_paths``) or features tables, as the module
    reads (:mod:`weightzoo.figures.registry`)."""
    import importlib

    make = importlib.import_module(f"weightzoo.figures.{module}").make
    kwargs = {**figure_kwargs(make, options), "number": number}
    log.info("drawing %s from %d experiments with %s", module, len(list(sources)), kwargs)
    make(list(sources), list(group_paths), str(out_pdf), str(out_png), **kwargs)


def features(zoo_path, groups_path, out_path) -> None:
    """The features table of one experiment (``results/features/<experiment>.parquet``)."""
    from .analysis.features import features_from_file, write_features
    from .groups import read_groups_csv

    df = features_from_file(zoo_path, read_groups_csv(groups_path))
    write_features(df, out_path)
    log.info(
        "%s: %d rows (%d trials x layers x states), %d non-finite rows; wrote %s",
        df["experiment"].iat[0] if len(df) else zoo_path,
        len(df),
        df["trial"].nunique(),
        int(df["nonfinite"].sum()),
        out_path,
    )


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
