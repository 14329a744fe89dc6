"""Streams trials into a zoo file: at most ``chunk_trials`` trials' weights in memory.

Each architecture (a shape signature of the state dict, or the source's architecture
label) becomes ``/archs/<name>/`` of ``docs/hdf5.md`` with ``arch`` =
``{"label", "parameters"}`` (the generic family, weightzoo.train.shapes). Weights are
appended to resizable datasets a chunk at a time, and so are the per-trial ids, seeds,
divergence and metrics: memory holds one chunk of trials whatever the zoo's size. Only the
training settings are kept to the end, where their type (integer, real or name) and the
setting ids are known, as compact arrays of 9 bytes a setting and trial (:mod:`.settings`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import h5py
import numpy as np

from ..hdf5 import COMPRESSION, METRICS, TRIAL_FIELDS, ArchTrials, _write_hparams
from .errors import ZooImportError
from .records import TrialRecord
from .settings import SettingColumn, settings_as_stored

log = logging.getLogger(__name__)

MODEL = "generic"
CHUNK_BYTES = 1 << 20  # HDF5 chunk of a weight dataset: about 1 MiB


def generic_arch_name(arch: dict) -> str:
    from ...train.shapes import get_shapes

    return get_shapes(MODEL).arch_name(arch)


SCALAR_CHUNK_ROWS = 4096  # HDF5 chunk of a per-trial dataset (ids, metrics)


@dataclass
class _Arch:
    name: str
    label: str | None
    parameters: list[tuple[str, tuple[int, ...]]]
    first_where: str
    group: h5py.Group
    buffered: list[dict[str, dict[str, np.ndarray]]] = field(default_factory=list)
    pending: list[dict[str, object]] = field(default_factory=list)  # the chunk's scalars
    written: int = 0
    last_id: int | None = None
    last_where: str = ""
    hparams: dict[str, SettingColumn] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return [name for name, _ in self.parameters]

    @property
    def trials(self) -> int:
        return self.written + len(self.buffered)


# per-trial datasets appended a chunk at a time: path -> dtype
TRIAL_DATASETS = {
    "trials/trial_id": np.int64,
    "trials/seed": np.int64,
    "trials/diverged": bool,
    "trials/diverged_epoch": np.int32,
}


class ZooWriter:
    """``add`` each trial, then ``finish``; ``f`` is an open, empty HDF5 file."""

    def __init__(
        self,
        f: h5py.File,
        epochs: int,
        weight_sets: list[str],
        hparam_names: list[str],
        chunk_trials: int,
    ):
        if chunk_trials < 1:
            raise ValueError(f"chunk_trials must be >= 1, got {chunk_trials}")
        self.f = f
        self.epochs = epochs
        self.weight_sets = list(weight_sets)
        self.hparam_names = list(hparam_names)
        self.chunk_trials = chunk_trials
        self.archs: dict[str, _Arch] = {}
        self.by_signature: dict[tuple, str] = {}
        self.dtype: np.dtype | None = None
        self.dtype_where = ""
        self.buffered = 0
        self.max_buffered = 0  # the most trials' weights held at once (tests check it)
        self.missing_sets = 0

    # ----------------------------------------------------------------- one trial
    def add(self, rec: TrialRecord) -> None:
        final = rec.weights.get("final")
        if not final:
            raise ZooImportError(f"{rec.where}: no final weights")
        self._check_dtype(rec, final)
        arch = self._arch_of(rec, final)
        weights = {}
        for which in self.weight_sets:
            params = rec.weights.get(which)
            if params is None:
                self.missing_sets += 1
                params = {n: np.full(s, np.nan, dtype=self.dtype) for n, s in arch.parameters}
            else:
                self._check_same_keys(rec, arch, params, which)
            weights[which] = {n: np.asarray(params[n], dtype=self.dtype) for n in arch.keys}
        self._record_scalars(rec, arch, weights["final"])
        arch.buffered.append(weights)
        self.buffered += 1
        self.max_buffered = max(self.max_buffered, self.buffered)
        if self.buffered >= self.chunk_trials:
            self.flush()

    def _check_dtype(self, rec: TrialRecord, final: dict[str, np.ndarray]) -> None:
        dtypes = {np.asarray(a).dtype for params in rec.weights.values() for a in params.values()}
        if len(dtypes) > 1:
            raise ZooImportError(
                f"{rec.where}: mixed dtypes ({', '.join(sorted(map(str, dtypes)))}) across its "
                "weight files; save them all in one dtype"
            )
        dtype = np.dtype(dtypes.pop())
        if self.dtype is None:
            self.dtype, self.dtype_where = dtype, rec.where
        elif dtype != self.dtype:
            raise ZooImportError(
                f"{rec.where}: weights are {dtype}, those of the trials before are {self.dtype} "
                f"(first: {self.dtype_where}); mixed dtypes are refused: save every trial in "
                "one dtype (float32, or float64 throughout)"
            )

    def _arch_of(self, rec: TrialRecord, final: dict[str, np.ndarray]) -> _Arch:
        parameters = [(n, tuple(np.shape(a))) for n, a in final.items()]
        if rec.label is not None:
            key: tuple = ("label", rec.label)
        else:
            key = ("signature", tuple(sorted(parameters)))
        name = self.by_signature.get(key)
        if name is None:
            arch_json = {"label": rec.label, "parameters": [[n, list(s)] for n, s in parameters]}
            name = generic_arch_name(arch_json)
            if name in self.archs:
                raise ZooImportError(
                    f"{rec.where}: architecture name {name!r} is already taken by another "
                    f"architecture (first: {self.archs[name].first_where}); give the "
                    "architectures distinct labels"
                )
            group = self.f.create_group(f"archs/{name}")
            group.attrs["arch_name"] = name
            group.attrs["arch"] = json.dumps(arch_json, sort_keys=True)
            group.attrs["settings"] = json.dumps({})
            arch = _Arch(name, rec.label, parameters, rec.where, group)
            self._create_datasets(arch)
            self._create_trial_datasets(arch)
            self.archs[name] = arch
            self.by_signature[key] = name
            return arch
        arch = self.archs[name]
        self._check_same_keys(rec, arch, final, "final")
        return arch

    def _check_same_keys(self, rec, arch: _Arch, params: dict, which: str) -> None:
        expected = dict(arch.parameters)
        got = {n: tuple(np.shape(a)) for n, a in params.items()}
        if set(got) != set(expected):
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            of = f"architecture label {arch.label!r}" if arch.label else f"architecture {arch.name}"
            raise ZooImportError(
                f"{rec.where}: the {which} state dict's keys differ from the others of {of} "
                f"(first: {arch.first_where}): missing {missing}, extra {extra}; fix the file "
                "or give the trial its own arch label"
            )
        for n, shape in got.items():
            if shape != expected[n]:
                raise ZooImportError(
                    f"{rec.where}: {which} weight {n!r} has shape {list(shape)}, the others of "
                    f"architecture {arch.label or arch.name} have {list(expected[n])} (first: "
                    f"{arch.first_where}); fix the file or give the trial its own arch label"
                )

    def _create_datasets(self, arch: _Arch) -> None:
        for which in self.weight_sets:
            for n, shape in arch.parameters:
                per_trial = max(1, int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize)
                rows = max(1, min(self.chunk_trials, CHUNK_BYTES // per_trial))
                arch.group.create_dataset(
                    f"weights/{which}/{n}",
                    shape=(0, *shape),
                    maxshape=(None, *shape),
                    dtype=self.dtype,
                    chunks=(rows, *shape) if shape else (rows,),
                    **COMPRESSION,
                )

    def _create_trial_datasets(self, arch: _Arch) -> None:
        """The per-trial datasets, empty and resizable: ``flush`` appends each chunk."""
        rows = SCALAR_CHUNK_ROWS
        for path, dtype in TRIAL_DATASETS.items():
            arch.group.create_dataset(path, (0,), maxshape=(None,), dtype=dtype, chunks=(rows,))
        for m in METRICS:
            arch.group.create_dataset(
                f"metrics/{m}",
                shape=(0, self.epochs),
                maxshape=(None, self.epochs),
                dtype=np.float32,
                chunks=(max(1, rows // self.epochs), self.epochs),
                **COMPRESSION,
            )

    def _record_scalars(self, rec: TrialRecord, arch: _Arch, final: dict) -> None:
        trial_id = rec.trial_id if rec.trial_id is not None else arch.trials
        self._check_increasing_id(rec, arch, trial_id)
        nonfinite = any(not np.isfinite(a).all() for a in final.values())
        diverged = bool(rec.diverged or nonfinite)
        scalars: dict[str, object] = {
            "trials/trial_id": trial_id,
            "trials/seed": int(rec.seed),
            "trials/diverged": diverged,
            "trials/diverged_epoch": self._diverged_epoch(rec, diverged),
        }
        for m in METRICS:
            values = np.full(self.epochs, np.nan)
            given = np.asarray(rec.metrics.get(m, values), dtype=np.float64)
            values[: len(given)] = given[: self.epochs]
            scalars[f"metrics/{m}"] = values
        arch.pending.append(scalars)
        for name in self.hparam_names:
            arch.hparams.setdefault(name, SettingColumn()).append(rec.hparams.get(name))

    def _diverged_epoch(self, rec: TrialRecord, diverged: bool) -> int:
        """The source's, else the first epoch whose test accuracy is NaN (the last epoch
        when none is) for a diverged trial, -1 for the others."""
        if rec.diverged_epoch is not None:
            return rec.diverged_epoch
        if not diverged:
            return -1
        test = np.asarray(rec.metrics.get("test_acc", np.full(self.epochs, np.nan)))
        nan = np.flatnonzero(np.isnan(test))
        return int(nan[0]) if len(nan) else self.epochs - 1

    @staticmethod
    def _check_increasing_id(rec: TrialRecord, arch: _Arch, trial_id: int) -> None:
        """Trials arrive in id order (a zoo holds them sorted): an id that does not grow is
        a duplicate or out of order, refused before anything is kept."""
        if arch.last_id is not None and trial_id <= arch.last_id:
            raise ZooImportError(
                f"{rec.where}: trial_id {trial_id} of architecture {arch.name} comes after "
                f"trial_id {arch.last_id} ({arch.last_where}); trial ids must be unique "
                "within an architecture and the trials given in id order"
            )
        arch.last_id, arch.last_where = trial_id, rec.where

    # ----------------------------------------------------------------- chunks
    def flush(self) -> None:
        """Append every buffered trial to its datasets and drop it from memory."""
        for arch in self.archs.values():
            if not arch.buffered:
                continue
            n = len(arch.buffered)
            for which in self.weight_sets:
                for name in arch.keys:
                    ds = arch.group[f"weights/{which}/{name}"]
                    ds.resize(arch.written + n, axis=0)
                    ds[arch.written :] = np.stack([t[which][name] for t in arch.buffered])
            self._append_scalars(arch, n)
            arch.written += n
            arch.buffered = []
        self.buffered = 0

    @staticmethod
    def _append_scalars(arch: _Arch, n: int) -> None:
        """Append the chunk's ids, seeds, divergence and metrics, and forget them."""
        for path in arch.pending[0]:
            ds = arch.group[path]
            ds.resize(arch.written + n, axis=0)
            ds[arch.written :] = np.asarray([t[path] for t in arch.pending], dtype=ds.dtype)
        arch.pending = []

    # ----------------------------------------------------------------- the end
    def finish(self) -> list[str]:
        """Write the last chunk and the settings; returns the architectures' names."""
        self.flush()
        if not self.archs:
            raise ZooImportError("the source holds no trials")
        for arch in self.archs.values():
            self._write_settings(arch)
        if self.missing_sets:
            log.warning(
                "%d weight sets missing from their trials were stored as NaN", self.missing_sets
            )
        return list(self.archs)

    def _write_settings(self, arch: _Arch) -> None:
        hparams = settings_as_stored(arch.hparams)
        if hparams:
            empty = {k: np.empty(0) for k in TRIAL_FIELDS}
            trials = {**empty, "trial_id": arch.group["trials/trial_id"][()]}
            view = ArchTrials(arch.name, {}, trials, {}, {}, {}, hparams=hparams)
            _write_hparams(arch.group, view)
