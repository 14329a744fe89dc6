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
    /weights/epoch_<k>/<p> [T, ...]    parameters after epoch k (training.checkpoint_epochs)
    /dynamics/<p>/<stat>   [T, E] float32  rwc, fro_norm, dist_from_init of each analysed
                                       layer after every epoch (weightzoo.train.dynamics)
    /hparams/<name>        [T] float64, int64 or UTF-8 str: the trial's value of each
                                       training setting that varies (setting_id among them);
                                       absent when every setting is fixed

Zoo file: the same root attributes (without arch ones) plus ``config`` (JSON of the
experiment's resolved config), and one group ``/archs/<arch_name>/`` per architecture
laid out like a job file (``trials``, ``metrics``, ``weights``, ``dynamics``; attrs
``arch``, ``settings``), its trials sorted by ``trial_id``.

Schema version 2 added ``weights/epoch_<k>`` and ``dynamics``; version-1 files (without
them) still read, with empty ``checkpoints`` and ``dynamics``. ``hparams`` is an additive
part of version 2: a file without it (every file before per-trial settings, and every zoo
with fixed settings) reads with empty ``hparams``, and a reader that does not know the group
skips it, so the version stays 2.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..io import atomic_output
from .columns import SETTING_ID, hparam_column, nullable_setting_id

# the per-epoch statistics of every analysed layer under /dynamics/<p>/ (written by
# weightzoo.train.dynamics; named here so that readers of a zoo need no torch)
DYNAMICS_STATS = ("rwc", "fro_norm", "dist_from_init")

FORMAT = "weightzoo"
SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
TRIAL_FIELDS = ("trial_id", "seed", "diverged", "diverged_epoch")
# the weight sets every file holds; checkpoints add "epoch_<k>" (schema 2)
WEIGHT_SETS = ("initial", "final")
# read_zoo(weights=...) name for every stored checkpoint
ALL_CHECKPOINTS = "epoch_*"
_CHECKPOINT = re.compile(r"epoch_([1-9][0-9]*)")
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


def checkpoint_name(epoch: int) -> str:
    """Weight-set name of the checkpoint after ``epoch`` (1-based): ``epoch_5``."""
    return f"epoch_{int(epoch)}"


def checkpoint_epoch(name: str) -> int | None:
    """``epoch_5`` -> 5; None for any other name."""
    m = _CHECKPOINT.fullmatch(name)
    return int(m.group(1)) if m else None


def check_weight_sets(weights: Sequence[str]) -> None:
    """Each of ``weights`` is initial, final, epoch_<k> or epoch_* (else ValueError)."""
    bad = [
        w
        for w in weights
        if w not in WEIGHT_SETS and w != ALL_CHECKPOINTS and checkpoint_epoch(w) is None
    ]
    if bad:
        raise ValueError(
            f"weights must be among {WEIGHT_SETS}, epoch_<k> (a stored checkpoint) or "
            f"{ALL_CHECKPOINTS!r} (all of them), got {sorted(bad)}"
        )


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
    # schema 2; empty when read from a version-1 file
    checkpoints: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # k -> param
    dynamics: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # param -> stat
    # the varied training settings -> [T] (float64, int64 or str), SETTING_ID among them;
    # empty when every setting is fixed (and in files written before settings could vary)
    hparams: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        return len(self.trials["trial_id"])

    @property
    def checkpoint_epochs(self) -> list[int]:
        """Epochs (1-based) of the loaded checkpoints, ascending."""
        return sorted(self.checkpoints)

    def weights(self, state: str) -> dict[str, np.ndarray]:
        """The weight set ``state``: initial, final or epoch_<k> (``{param: [T, ...]}``)."""
        if state in WEIGHT_SETS:
            return getattr(self, state)
        epoch = checkpoint_epoch(state)
        if epoch is None or epoch not in self.checkpoints:
            loaded = [*WEIGHT_SETS, *(checkpoint_name(k) for k in self.checkpoint_epochs)]
            raise KeyError(f"{self.arch_name}: no weight set {state!r}; loaded: {loaded}")
        return self.checkpoints[epoch]

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
            checkpoints={k: pick(v) for k, v in self.checkpoints.items()},
            dynamics={k: pick(v) for k, v in self.dynamics.items()},
            hparams=pick(self.hparams),
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
        """One row per trial: ids, seed, divergence, the varied training settings
        (``setting_id`` and ``hp_<name>``, where the zoo has any), final and best
        accuracies (fractions). A setting that some architectures lack is NaN there."""
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
            rows.update({hparam_column(k): v for k, v in a.hparams.items()})
            frames.append(pd.DataFrame(rows))
        table = pd.concat(frames, ignore_index=True)
        settings = list(dict.fromkeys(hparam_column(k) for a in self.archs for k in a.hparams))
        settings.sort(key=lambda c: c != SETTING_ID)  # setting_id first, the rest in order
        at = list(table.columns).index(TRIAL_FIELDS[-1]) + 1  # after the trial's own fields
        order = [c for c in table.columns if c not in settings]
        return nullable_setting_id(table.loc[:, [*order[:at], *settings, *order[at:]]])


def _nan_if_empty(a: np.ndarray) -> np.ndarray:
    # np.nanmax warns on all-NaN rows (diverged from epoch 0); -inf keeps it quiet and
    # is replaced by NaN afterwards by callers that care.
    return np.where(np.isnan(a), -np.inf, a)


def _json_attr(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def package_versions() -> dict[str, str]:
    import sys

    import torch

    from .. import __version__

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
    weight_sets = [("initial", a.initial), ("final", a.final)]
    weight_sets += [(checkpoint_name(k), a.checkpoints[k]) for k in a.checkpoint_epochs]
    for which, params in weight_sets:
        for p, arr in params.items():
            group.create_dataset(f"weights/{which}/{p}", data=arr, **COMPRESSION)
    for p, stats in a.dynamics.items():
        for stat, arr in stats.items():
            group.create_dataset(f"dynamics/{p}/{stat}", data=arr, **COMPRESSION)
    _write_hparams(group, a)


def hparam_values(arch_name: str, name: str, values, n_trials: int) -> np.ndarray:
    """One varied setting's ``[T]`` values as stored: numbers as float64 (integers as
    int64), names as a numpy str array; a wrong length or type is an error naming both."""
    arr = np.asarray(values)
    where = f"architecture {arch_name}: hparams[{name!r}]"
    if arr.shape != (n_trials,):
        raise ValueError(
            f"{where} has shape {arr.shape}, expected ({n_trials},): one value per trial"
        )
    if arr.dtype.kind in "USO":
        if not all(isinstance(v, str) for v in arr.tolist()):
            raise ValueError(f"{where}: an object array must hold only str (setting names)")
        return arr.astype(str)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    raise ValueError(
        f"{where}: dtype {arr.dtype} is not stored; give numbers (float or int) or names (str)"
    )


def _write_hparams(group: h5py.Group, a: ArchTrials) -> None:
    """``hparams/<name>``, one dataset per varied setting, in ``a.hparams``' order (the
    group tracks creation order, so it reads back in that order; HDF5 would sort names)."""
    if not a.hparams:
        return  # fixed settings: no group, as in every file before settings could vary
    sub = group.create_group("hparams", track_order=True)
    for name, values in a.hparams.items():
        arr = hparam_values(a.arch_name, name, values, a.n_trials)
        if arr.dtype.kind == "U":
            sub.create_dataset(name, data=arr.astype(object), dtype=h5py.string_dtype("utf-8"))
        else:
            sub.create_dataset(name, data=arr)


def _read_hparams(group: h5py.Group) -> dict[str, np.ndarray]:
    """The ``hparams`` subgroup as ``{name: [T]}``, strings as numpy str arrays; empty
    when the group is absent (fixed settings, or a file from before)."""
    if "hparams" not in group:
        return {}
    out = {}
    for name, ds in group["hparams"].items():
        if h5py.check_string_dtype(ds.dtype) is not None:
            out[name] = np.asarray(ds.asstr()[()], dtype=str)
        else:
            out[name] = ds[()]
    return out


def stored_checkpoints(group: h5py.Group) -> list[int]:
    """Epochs of the checkpoints under ``group/weights`` (an arch group or a job file)."""
    names = group["weights"].keys() if "weights" in group else ()
    return sorted(k for k in map(checkpoint_epoch, names) if k is not None)


def _wanted_checkpoints(group: h5py.Group, weights: Sequence[str], path) -> list[int]:
    stored = stored_checkpoints(group)
    if ALL_CHECKPOINTS in weights:
        return stored
    wanted = sorted(k for k in map(checkpoint_epoch, weights) if k is not None)
    missing = [k for k in wanted if k not in stored]
    if missing:
        raise ValueError(
            f"{path}: {group.name} has no checkpoint after epoch(s) {missing}; stored: "
            f"{[checkpoint_name(k) for k in stored] or 'none'} (training.checkpoint_epochs)"
        )
    return wanted


def _read_arch_group(
    group: h5py.Group, weights: Sequence[str] = WEIGHT_SETS, path=None
) -> ArchTrials:
    def read_all(sub: str) -> dict[str, np.ndarray]:
        return {k: v[()] for k, v in group[sub].items()} if sub in group else {}

    def weight_set(name: str) -> dict[str, np.ndarray]:
        return read_all(f"weights/{name}") if name in weights else {}

    dynamics = group.get("dynamics", {})
    return ArchTrials(
        arch_name=str(group.attrs["arch_name"]),
        arch=json.loads(group.attrs["arch"]),
        trials=read_all("trials"),
        metrics=read_all("metrics"),
        initial=weight_set("initial"),
        final=weight_set("final"),
        settings=json.loads(group.attrs.get("settings", "{}")),
        checkpoints={
            k: read_all(f"weights/{checkpoint_name(k)}")
            for k in _wanted_checkpoints(group, weights, path)
        },
        dynamics={p: read_all(f"dynamics/{p}") for p in dynamics},
        hparams=_read_hparams(group),
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
    if version not in READABLE_SCHEMA_VERSIONS:
        raise ValueError(
            f"{path}: schema_version {version}, this weightzoo reads versions "
            f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))}; rebuild it with this version "
            "(delete the file and rerun snakemake) or read it with the weightzoo that wrote it"
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


def read_job_file(
    path: str | os.PathLike, weights: Sequence[str] = (*WEIGHT_SETS, ALL_CHECKPOINTS)
) -> tuple[ArchTrials, dict]:
    """One job file's trials (all weight sets, checkpoints included, by default)."""
    check_weight_sets(weights)
    with h5py.File(path, "r") as f:
        _check_format(f, path)
        meta = {k: f.attrs[k] for k in ("experiment", "model", "dataset")}
        return _read_arch_group(f, weights, path), meta


def _same_layout(parts: Sequence[ArchTrials], what: str, key) -> None:
    """Chunks of one architecture hold the same checkpoints and dynamics (or say so)."""
    layouts = {tuple(sorted(key(p))) for p in parts}
    if len(layouts) > 1:
        raise ValueError(
            f"architecture {parts[0].arch_name}: its job files hold different {what} "
            f"({' vs '.join(map(str, sorted(layouts)))}); written by different settings or "
            "weightzoo versions: delete them and rerun snakemake"
        )


def concat_arrays(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``{name: array}`` dicts joined along the trial axis (the first dict's names)."""
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def concat_nested(parts: Sequence[Mapping[object, Mapping[str, np.ndarray]]]) -> dict:
    """Two-level dicts (checkpoints, dynamics) joined along the trial axis."""
    return {outer: concat_arrays([p[outer] for p in parts]) for outer in parts[0]}


def concat_trials(parts: Sequence[ArchTrials]) -> ArchTrials:
    """Join chunks of one architecture, sorted by trial id; duplicate ids are an error."""
    first = parts[0]
    _same_layout(parts, "checkpoints", lambda p: p.checkpoints)
    _same_layout(parts, "dynamics", lambda p: p.dynamics)
    _same_layout(parts, "varied settings (hparams)", lambda p: p.hparams)

    def cat(key: str) -> dict[str, np.ndarray]:
        return concat_arrays([getattr(p, key) for p in parts])

    def cat_nested(key: str) -> dict:
        return concat_nested([getattr(p, key) for p in parts])

    joined = ArchTrials(
        first.arch_name,
        first.arch,
        cat("trials"),
        cat("metrics"),
        cat("initial"),
        cat("final"),
        first.settings,
        checkpoints=cat_nested("checkpoints"),
        dynamics=cat_nested("dynamics"),
        hparams=cat("hparams"),
    )
    ids = joined.trials["trial_id"]
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"architecture {first.arch_name}: the same trial id is in two job files")
    return joined.select(np.argsort(ids, kind="stable"))


def _job_file_identity(path) -> tuple[dict, str]:
    """A job file's experiment, model, dataset and architecture (no data read)."""
    with h5py.File(path, "r") as f:
        _check_format(f, path)
        return {k: str(f.attrs[k]) for k in ("experiment", "model", "dataset")}, str(
            f.attrs["arch_name"]
        )


def _without_weights(a: ArchTrials) -> ArchTrials:
    return ArchTrials(
        a.arch_name,
        a.arch,
        a.trials,
        a.metrics,
        {},
        {},
        a.settings,
        dynamics=a.dynamics,
        hparams=a.hparams,
    )


def merge_job_files(job_paths: Iterable[str | os.PathLike], out_path, config: Mapping) -> Zoo:
    """Aggregate job files of one experiment into its zoo file (atomic write).

    One architecture at a time is in memory (with checkpoints a whole experiment's
    weights would not fit a merge job). Returns the zoo without weights: trials, metrics
    and dynamics."""
    by_arch: dict[str, list] = {}
    meta = None
    for p in job_paths:
        m, arch_name = _job_file_identity(p)
        meta = meta or m
        if m != meta:
            raise ValueError(
                f"{p}: belongs to experiment {m['experiment']}, not {meta['experiment']}"
            )
        by_arch.setdefault(arch_name, []).append(p)
    if meta is None:
        raise ValueError(f"no job files to merge into {out_path}")
    zoo = Zoo(**meta, archs=[], config=dict(config), versions=package_versions())
    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as f:
        _write_root_attrs(f, {**meta, "versions": zoo.versions, "config": zoo.config})
        for arch_name, paths in by_arch.items():
            joined = concat_trials([read_job_file(p)[0] for p in paths])
            _write_arch_group(f.create_group(f"archs/{arch_name}"), joined)
            zoo.archs.append(_without_weights(joined))
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
    load (``("final",)`` halves the memory; ``()`` reads trials, metrics and dynamics
    only); checkpoints load when named (``"epoch_5"``, or ``"epoch_*"`` for all)."""
    check_weight_sets(weights)
    path = Path(path)
    with h5py.File(path, "r") as f:
        _check_zoo(f, path)
        return Zoo(
            experiment=str(f.attrs["experiment"]),
            model=str(f.attrs["model"]),
            dataset=str(f.attrs["dataset"]),
            archs=[_read_arch_group(g, weights, path) for g in f["archs"].values()],
            config=json.loads(f.attrs.get("config", "{}")),
            versions=json.loads(f.attrs.get("versions", "{}")),
        )


def read_trial_params(
    path: str | os.PathLike, arch_name: str, index: int, weights: str = "final"
) -> dict[str, np.ndarray]:
    """One trial's parameters ``{name: array}`` (per-trial shapes, no trial axis), read
    without loading the other trials. ``index`` is the trial's position within its
    architecture (trials are sorted by ``trial_id``); ``weights`` is initial, final or a
    stored checkpoint epoch_<k>."""
    if weights not in WEIGHT_SETS and checkpoint_epoch(weights) is None:
        raise ValueError(f"weights must be one of {WEIGHT_SETS} or epoch_<k>, got {weights!r}")
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
        _wanted_checkpoints(group, [weights], path)  # a missing checkpoint names the stored
        return {name: ds[index] for name, ds in group[f"weights/{weights}"].items()}
