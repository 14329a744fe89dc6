"""One experiment's reconstruction table: every trial and predictor size, per layer and
per trial, plus the shared representation (``results/reconstruct/<experiment>.parquet``).

Trials are read and fitted a chunk at a time (``trials_per_chunk``), so a job's memory is
bounded by a chunk, not by the zoo; the shared representation of an architecture holds
that architecture's weights (it is fitted to all of them at once).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import h5py
import numpy as np
import pandas as pd
import torch

from ...io import atomic_output
from ...train.models import ModelFamily
from ...train.trainer import TensorData, evaluate_params
from ...zoo.hdf5 import read_zoo
from . import fit as fitting
from .settings import ReconstructSettings
from .shared import fit_shared
from .summary import COLUMNS, TRIAL_LEVEL

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Where and how the fits run: the family running on the device, the dataset there
    (None: no accuracies), dtype and the evaluation's chunk size."""

    family_name: str
    family: ModelFamily
    data: TensorData | None
    dtype: torch.dtype
    device: torch.device
    eval_chunk_mb: int = 64


def chunks(n: int, size: int) -> list[np.ndarray]:
    return [np.arange(s, min(s + size, n)) for s in range(0, n, size)]


def read_final(path, arch_name: str, index: np.ndarray) -> dict[str, np.ndarray]:
    """The final weights ``{param: [len(index), ...]}`` of some trials of one architecture,
    read without loading the others."""
    with h5py.File(path, "r") as f:
        group = f[f"archs/{arch_name}/weights/final"]
        return {name: ds[np.sort(index)] for name, ds in group.items()}


def rebuilt_accuracy(rt: Runtime, params, arch, options) -> np.ndarray:
    """Test accuracy [T] of the stacked ``params``, evaluated by the trainer's own code
    (:func:`weightzoo.train.trainer.evaluate_params`); NaN without a dataset."""
    if rt.data is None:
        return np.full(next(iter(params.values())).shape[0], np.nan)
    if next(iter(params.values())).shape[0] == 1 and rt.device.type == "cpu":
        # a lone CPU trial beside a copy of itself, as the trainer evaluates it
        params = {k: v.expand(2, *v.shape[1:]) for k, v in params.items()}
        return rebuilt_accuracy(rt, params, arch, options)[:1]
    params = _trained_layout(rt.family, arch, params)
    _, acc = evaluate_params(
        rt.family, params, arch, rt.data.x_test, rt.data.y_test, rt.eval_chunk_mb, None, options
    )
    return acc.cpu().numpy().astype(np.float64)


def _on_device(rt: Runtime, weights: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v).to(device=rt.device, dtype=rt.dtype) for k, v in weights.items()}


def _trained_layout(family: ModelFamily, arch, params):
    """The linear weights as views of ``[T, in, out]`` storage, as the trainer holds them
    (the same bits from the same kernels: rebuilding with the true weights gives exactly
    the recorded accuracy)."""
    linear = set(family.linear_weights(arch))
    return {
        k: v.transpose(1, 2).contiguous().transpose(1, 2) if k in linear else v.contiguous()
        for k, v in params.items()
    }


def reconstruct_chunk(
    rt: Runtime, arch: Mapping, weights: Mapping[str, np.ndarray], seeds: Sequence[int],
    settings: ReconstructSettings, options: Mapping,
) -> list[dict]:  # fmt: skip
    """Rows of one chunk of trials (``weights``: their final ``{param: [T, ...]}``): per
    ratio, each trial's row and its layers' rows (keys of :data:`COLUMNS` without the
    trial's identity; ``_k``: the trial's position in the chunk)."""
    params = _on_device(rt, weights)
    targets = fitting.prepare(rt.family_name, rt.family, arch, params, settings)
    acc_original = rebuilt_accuracy(rt, params, arch, options)
    rows = []
    for ratio in settings.ratios:
        mlp = fitting.fit_predictors(targets, ratio, settings, seeds)
        with torch.no_grad():
            rebuilt = fitting.rebuild(targets, fitting.predict_rows(mlp, targets))
        fit_errors = _errors(targets, params, rebuilt)  # the weights' fit, before distilling
        if settings.distill_steps and rt.data is not None:
            fitting.distill(mlp, targets, rt.family, arch, params, rt.data.x_train, settings,
                            seeds, options)  # fmt: skip
            with torch.no_grad():
                rebuilt = fitting.rebuild(targets, fitting.predict_rows(mlp, targets))
        size = fitting.predictor_parameters(mlp, targets)
        common = {"kind": "own", "ratio": ratio, "ratio_actual": size / targets.n_weights,
                  "predictor_params": size, "hidden": mlp.weights[0].shape[2],
                  "steps": settings.steps, "distill_steps": settings.distill_steps}  # fmt: skip
        rows += _result_rows(rt, arch, targets, params, rebuilt, fit_errors, acc_original,
                             common, options)  # fmt: skip
    return rows


def _errors(targets, params, rebuilt) -> tuple[np.ndarray, np.ndarray]:
    """Relative errors of the rebuilt weights: ``[T, L]`` per layer and ``[T]`` in all."""
    layer_params = [g.param for g in targets.grids]
    per_layer, total = fitting.relative_errors(params, rebuilt, layer_params)
    return per_layer.cpu().numpy(), total.cpu().numpy()


def _result_rows(
    rt, arch, targets, params, rebuilt, fit_errors, acc_original, common, options
) -> list[dict]:
    """Rows of the rebuilt weights ``rebuilt``; ``fit_errors``: :func:`_errors` at the end
    of the reconstruction phase (the same as ``rebuilt``'s without distillation)."""
    per_layer, total = _errors(targets, params, rebuilt)
    fit_per_layer, fit_total = fit_errors
    acc = rebuilt_accuracy(rt, {**params, **rebuilt}, arch, options)
    rows = []
    for k in range(targets.n_trials):
        rows.append({**common, "_k": k, "layer": TRIAL_LEVEL, "layer_index": -1,
                     "n_weights": targets.n_weights, "rel_error": float(total[k]),
                     "rel_error_fit": float(fit_total[k]),
                     "acc_original": acc_original[k], "acc_rebuilt": acc[k],
                     "acc_drop_pts": 100 * (acc_original[k] - acc[k])})  # fmt: skip
        for i, g in enumerate(targets.grids):
            rows.append({**common, "_k": k, "layer": g.label, "layer_index": i,
                         "n_weights": g.n_weights, "rel_error": float(per_layer[k, i]),
                         "rel_error_fit": float(fit_per_layer[k, i])})  # fmt: skip
    return rows


def reconstruct_shared(
    rt: Runtime, arch: Mapping, arch_name: str, weights, acc_original: np.ndarray, settings,
    options,
) -> list[dict]:  # fmt: skip
    """Rows of the shared representation of one architecture (all its trials at once;
    ``acc_original [T]``: their accuracies, as the own fits evaluated them)."""
    params = _on_device(rt, weights)
    targets = fitting.prepare(rt.family_name, rt.family, arch, params, settings)
    fit = fit_shared(targets, settings, arch_name)
    with torch.no_grad():
        rebuilt = fitting.rebuild(targets, fitting.predict_rows(fit.predict, targets))
    size = fit.parameters
    per_trial = size / targets.n_trials + settings.shared_latent
    common = {"kind": "shared", "ratio": np.nan, "ratio_actual": per_trial / targets.n_weights,
              "predictor_params": size, "hidden": fit.mlp.weights[0].shape[2],
              "steps": settings.shared_steps, "distill_steps": 0}  # fmt: skip
    errors = _errors(targets, params, rebuilt)  # no distillation: the fit's own
    return _result_rows(rt, arch, targets, params, rebuilt, errors, acc_original, common,
                        options)  # fmt: skip


def reconstruct_zoo(zoo_path, groups: pd.DataFrame, rt: Runtime, settings) -> pd.DataFrame:
    """The reconstruction table of one zoo file (``groups``: its groups table)."""
    zoo = read_zoo(zoo_path, weights=())
    rows = []
    for a in zoo.archs:
        finite = _finite_trials(zoo_path, a.arch_name, a.n_trials)
        finite = sample_per_group(finite, a, groups, settings)
        activation = a.hparams.get("activation")
        for value, index in _by_activation(finite, activation):
            options = {} if value in (None, "relu") else {"activation": value}
            acc_original = np.full(len(index), np.nan)
            for part in chunks(len(index), settings.trials_per_chunk):
                idx = index[part]
                weights = read_final(zoo_path, a.arch_name, idx)
                out = reconstruct_chunk(
                    rt, a.arch, weights, a.trials["seed"][idx], settings, options
                )
                acc_original[part] = _original_accuracies(out, len(part))
                rows += _identify(out, a, idx)
                log.info(
                    "%s %s: trials %d..%d fitted", zoo.experiment, a.arch_name, idx[0], idx[-1]
                )
            if settings.shared_steps and len(index) >= 2:
                # the shared fit needs all of the architecture's trials at once: read again
                weights = read_final(zoo_path, a.arch_name, index)
                out = reconstruct_shared(
                    rt, a.arch, a.arch_name, weights, acc_original, settings, options
                )
                rows += _identify(out, a, index)
                log.info("%s %s: shared representation fitted", zoo.experiment, a.arch_name)
    if not rows:  # no trial with finite weights
        return pd.DataFrame(columns=list(COLUMNS))
    table = pd.DataFrame(rows)
    for key in ("experiment", "model", "dataset"):
        table.insert(0, key, getattr(zoo, key))
    table["order"] = settings.order
    group = groups.set_index(["arch", "trial_id"])["group"]
    table["group"] = group.reindex(pd.MultiIndex.from_frame(table[["arch", "trial_id"]])).to_numpy()
    return table.reindex(columns=list(COLUMNS))


def _original_accuracies(rows: list[dict], n: int) -> np.ndarray:
    """``[n]``: each trial's original accuracy, from its trial-level rows of a chunk."""
    acc = np.full(n, np.nan)
    for r in rows:
        if r["layer"] == TRIAL_LEVEL:
            acc[r["_k"]] = r["acc_original"]
    return acc


def _identify(rows: list[dict], a, index: np.ndarray) -> list[dict]:
    for r in rows:
        k = r.pop("_k")
        r["arch"], r["trial_id"] = a.arch_name, int(a.trials["trial_id"][index[k]])
    return rows


def sample_per_group(index: np.ndarray, a, groups: pd.DataFrame, settings) -> np.ndarray:
    """At most ``settings.trials_per_group`` of the trials ``index`` of architecture ``a``
    per accuracy group, drawn with ``settings.seed`` (sorted; all when the setting is 0)."""
    if not settings.trials_per_group:
        return index
    of_arch = groups[groups["arch"] == a.arch_name].set_index("trial_id")["group"]
    group = of_arch.reindex(a.trials["trial_id"][index]).fillna("").to_numpy()
    rng = np.random.default_rng([settings.seed, a.n_trials, len(index)])
    kept = [
        rng.choice(members, settings.trials_per_group, replace=False)
        if len(members) > settings.trials_per_group
        else members
        for members in (index[group == g] for g in sorted(set(group)))
    ]
    return np.sort(np.concatenate(kept))


def _finite_trials(path, arch_name: str, n: int) -> np.ndarray:
    """Trials whose final weights are all finite (diverged ones may hold NaN/inf)."""
    ok = np.ones(n, dtype=bool)
    with h5py.File(path, "r") as f:
        for ds in f[f"archs/{arch_name}/weights/final"].values():
            for part in chunks(n, 256):
                ok[part] &= np.isfinite(ds[part[0] : part[-1] + 1].reshape(len(part), -1)).all(1)
    return np.flatnonzero(ok)


def _by_activation(index: np.ndarray, activation) -> list[tuple[str | None, np.ndarray]]:
    """Trials split by their activation (a zoo may vary it; one forward runs one)."""
    if activation is None:
        return [(None, index)]
    values = np.asarray(activation)[index]
    return [(str(v), index[values == v]) for v in dict.fromkeys(values.tolist())]


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        table.to_parquet(tmp, index=False)
