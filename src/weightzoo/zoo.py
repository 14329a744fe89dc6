"""HDF5 files of trained trials: one per training job, one aggregated *zoo* per experiment.

The layout is documented for users in ``docs/hdf5.md``; keep the two in step.

Job file (one architecture, one chunk of its trials)::

    /                      attrs: format, schema_version, experiment, model, dataset,
                                  arch_name, arch (JSON), settings (JSON), versions (JSON)
    /trials/trial_id       [T] int64   index of the trial within its architecture
    /trials/seed           [T] int64   the trial's seed (init and data order)
    /trials/diverged       [T] bool    loss became NaN/inf at some step
    /trials/diverged_epoch [T] int32   first epoch (0-based) with a non-finite loss, -1 if none
    /metrics/<name>        [T, E] float32  train_loss, train_acc, test_loss, test_acc
    /weights/initial/<p>   [T, ...]    parameters before training (torch layout)
    /weights/final/<p>     [T, ...]    parameters after the last epoch

Zoo file: the same root attributes (without arch ones) plus ``config`` (JSON of the
experiment's resolved config), and one group ``/archs/<arch_name>/`` per architecture
laid out like a job file (``trials``, ``metrics``, ``weights``; attrs ``arch``,
``settings``), its trials sorted by ``trial_id``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from .io import atomic_output

FORMAT = "weightzoo"
SCHEMA_VERSION = 1
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
TRIAL_FIELDS = ("trial_id", "seed", "diverged", "diverged_epoch")
WEIGHT_SETS = ("initial", "final")
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


@dataclass
class ArchTrials:
    """All trials of one architecture (one job file, or one ``/archs/<name>`` group)."""

    arch_name: str
    arch: dict
    trials: dict[str, np.ndarray]  # TRIAL_FIELDS -> [T]
    metrics: dict[str, np.ndarray]  # METRICS -> [T, E]
    initial: dict[str, np.ndarray]  # param -> [T, ...]
    final: dict[str, np.ndarray]  # param -> [T, ...]
    settings: dict = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return len(self.trials["trial_id"])

    def select(self, index: np.ndarray) -> ArchTrials:
        """The trials at ``index`` (an int array or boolean mask), in that order."""
        pick = lambda d: {k: v[index] for k, v in d.items()}  # noqa: E731
        return ArchTrials(
            self.arch_name,
            self.arch,
            pick(self.trials),
            pick(self.metrics),
            pick(self.initial),
            pick(self.final),
            self.settings,
        )


@dataclass
class Zoo:
    """One experiment (model x dataset): its architectures and their trials."""

    experiment: str
    model: str
    dataset: str
    archs: list[ArchTrials]
    config: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    def trials_table(self) -> pd.DataFrame:
        """One row per trial: ids, seed, divergence, final and best accuracies (fractions)."""
        frames = []
        for a in self.archs:
            rows = {
                "experiment": self.experiment,
                "model": self.model,
                "dataset": self.dataset,
                "arch": a.arch_name,
                **{k: a.trials[k] for k in TRIAL_FIELDS},
            }
            for m in METRICS:
                rows[f"final_{m}"] = a.metrics[m][:, -1]
            for m in ("train_acc", "test_acc"):
                rows[f"max_{m}"] = np.nanmax(_nan_if_empty(a.metrics[m]), axis=1)
            frames.append(pd.DataFrame(rows))
        return pd.concat(frames, ignore_index=True)


def _nan_if_empty(a: np.ndarray) -> np.ndarray:
    # np.nanmax warns on all-NaN rows (diverged from epoch 0); -inf keeps it quiet and
    # is replaced by NaN afterwards by callers that care.
    return np.where(np.isnan(a), -np.inf, a)


def _json_attr(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def package_versions() -> dict[str, str]:
    import sys

    import torch

    from . import __version__

    return {
        "weightzoo": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "h5py": h5py.__version__,
    }


def _write_arch_group(group: h5py.Group, a: ArchTrials) -> None:
    group.attrs["arch_name"] = a.arch_name
    group.attrs["arch"] = _json_attr(a.arch)
    group.attrs["settings"] = _json_attr(a.settings)
    for name in TRIAL_FIELDS:
        group.create_dataset(f"trials/{name}", data=a.trials[name])
    for name in METRICS:
        group.create_dataset(f"metrics/{name}", data=a.metrics[name], **COMPRESSION)
    for which, params in (("initial", a.initial), ("final", a.final)):
        for p, arr in params.items():
            group.create_dataset(f"weights/{which}/{p}", data=arr, **COMPRESSION)


def _read_arch_group(group: h5py.Group, weights: Sequence[str] = WEIGHT_SETS) -> ArchTrials:
    def read_all(sub: str) -> dict[str, np.ndarray]:
        if sub.startswith("weights/") and sub.split("/")[1] not in weights:
            return {}
        return {k: v[()] for k, v in group[sub].items()} if sub in group else {}

    return ArchTrials(
        arch_name=str(group.attrs["arch_name"]),
        arch=json.loads(group.attrs["arch"]),
        trials=read_all("trials"),
        metrics=read_all("metrics"),
        initial=read_all("weights/initial"),
        final=read_all("weights/final"),
        settings=json.loads(group.attrs.get("settings", "{}")),
    )


def _write_root_attrs(f: h5py.File, meta: Mapping) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["schema_version"] = SCHEMA_VERSION
    for key in ("experiment", "model", "dataset"):
        f.attrs[key] = meta[key]
    f.attrs["versions"] = _json_attr(meta.get("versions") or package_versions())
    if "config" in meta:
        f.attrs["config"] = _json_attr(meta["config"])


def _check_format(f: h5py.File, path) -> None:
    if f.attrs.get("format") != FORMAT:
        raise ValueError(f"{path}: not a weightzoo HDF5 file (attribute 'format' missing)")
    version = int(f.attrs.get("schema_version", -1))
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema_version {version}, this weightzoo reads {SCHEMA_VERSION}; "
            "rebuild it with this version (delete the file and rerun snakemake)"
        )


def _check_zoo(f: h5py.File, path) -> None:
    """A weightzoo file that is a zoo, not a training job file (same format attribute)."""
    _check_format(f, path)
    if "archs" in f:
        return
    if "arch_name" in f.attrs:
        raise ValueError(
            f"{path}: a weightzoo training job file (architecture {f.attrs['arch_name']}, one "
            "chunk of its trials), not a zoo file; pass the experiment's zoo, "
            "results/zoo/<experiment>.h5"
        )
    raise ValueError(f"{path}: a weightzoo file without the group 'archs', not a zoo file")


def write_job_file(path: str | os.PathLike, a: ArchTrials, meta: Mapping) -> None:
    """Write one training job's trials; atomic (temporary name, then rename)."""
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _write_root_attrs(f, meta)
        _write_arch_group(f, a)


def read_job_file(path: str | os.PathLike) -> tuple[ArchTrials, dict]:
    with h5py.File(path, "r") as f:
        _check_format(f, path)
        meta = {k: f.attrs[k] for k in ("experiment", "model", "dataset")}
        return _read_arch_group(f), meta


def concat_trials(parts: Sequence[ArchTrials]) -> ArchTrials:
    """Join chunks of one architecture, sorted by trial id; duplicate ids are an error."""
    first = parts[0]

    def cat(key: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(p, key)[k] for p in parts]) for k in getattr(first, key)}

    joined = ArchTrials(
        first.arch_name,
        first.arch,
        cat("trials"),
        cat("metrics"),
        cat("initial"),
        cat("final"),
        first.settings,
    )
    ids = joined.trials["trial_id"]
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"architecture {first.arch_name}: the same trial id is in two job files")
    return joined.select(np.argsort(ids, kind="stable"))


def merge_job_files(job_paths: Iterable[str | os.PathLike], out_path, config: Mapping) -> Zoo:
    """Aggregate job files of one experiment into its zoo file (atomic write)."""
    by_arch: dict[str, list[ArchTrials]] = {}
    meta = None
    for p in job_paths:
        a, m = read_job_file(p)
        meta = meta or m
        if (m["experiment"], m["model"], m["dataset"]) != (
            meta["experiment"],
            meta["model"],
            meta["dataset"],
        ):
            raise ValueError(
                f"{p}: belongs to experiment {m['experiment']}, not {meta['experiment']}"
            )
        by_arch.setdefault(a.arch_name, []).append(a)
    if meta is None:
        raise ValueError(f"no job files to merge into {out_path}")
    zoo = Zoo(
        experiment=str(meta["experiment"]),
        model=str(meta["model"]),
        dataset=str(meta["dataset"]),
        archs=[concat_trials(parts) for parts in by_arch.values()],
        config=dict(config),
        versions=package_versions(),
    )
    write_zoo(out_path, zoo)
    return zoo


def write_zoo(path: str | os.PathLike, zoo: Zoo) -> None:
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        _write_root_attrs(
            f,
            {
                "experiment": zoo.experiment,
                "model": zoo.model,
                "dataset": zoo.dataset,
                "versions": zoo.versions,
                "config": zoo.config,
            },
        )
        for a in zoo.archs:
            _write_arch_group(f.create_group(f"archs/{a.arch_name}"), a)


def read_zoo(path: str | os.PathLike, weights: Sequence[str] = WEIGHT_SETS) -> Zoo:
    """Load a zoo file into memory (numpy arrays). ``weights`` picks the weight sets to
    load (``("final",)`` halves the memory; ``()`` reads trials and metrics only)."""
    unknown = set(weights) - set(WEIGHT_SETS)
    if unknown:
        raise ValueError(f"weights must be among {WEIGHT_SETS}, got {sorted(unknown)}")
    path = Path(path)
    with h5py.File(path, "r") as f:
        _check_zoo(f, path)
        return Zoo(
            experiment=str(f.attrs["experiment"]),
            model=str(f.attrs["model"]),
            dataset=str(f.attrs["dataset"]),
            archs=[_read_arch_group(g, weights) for g in f["archs"].values()],
            config=json.loads(f.attrs.get("config", "{}")),
            versions=json.loads(f.attrs.get("versions", "{}")),
        )


def read_trial_params(
    path: str | os.PathLike, arch_name: str, index: int, weights: str = "final"
) -> dict[str, np.ndarray]:
    """One trial's parameters ``{name: array}`` (per-trial shapes, no trial axis), read
    without loading the other trials. ``index`` is the trial's position within its
    architecture (trials are sorted by ``trial_id``); ``weights`` is initial or final."""
    if weights not in WEIGHT_SETS:
        raise ValueError(f"weights must be one of {WEIGHT_SETS}, got {weights!r}")
    path = Path(path)
    with h5py.File(path, "r") as f:
        _check_zoo(f, path)
        if arch_name not in f["archs"]:
            known = ", ".join(f["archs"])
            raise ValueError(f"{path}: no architecture {arch_name!r}; architectures: {known}")
        group = f[f"archs/{arch_name}"]
        n_trials = len(group["trials/trial_id"])
        if not 0 <= index < n_trials:
            raise ValueError(
                f"{path}: architecture {arch_name} has {n_trials} trials, index {index} "
                f"is not in 0..{n_trials - 1}"
            )
        return {name: ds[index] for name, ds in group[f"weights/{weights}"].items()}
