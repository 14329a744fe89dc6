"""A whole zoo written back as a checkpoint folder (``weightzoo export ZOO.h5 --all``).

One ``torch.save`` state dict per trial and weight set, ``<arch>/t<trial_id>.pt`` (final),
``t<trial_id>.initial.pt``, ``t<trial_id>.epoch_<k>.pt``, and ``trials.csv`` in the
checkpoint-folder format of :mod:`.table`: importing the folder gives the same weights,
accuracies, ids, seeds and settings (the layer dynamics recorded during training are not
part of a checkpoint folder). Trials are read a chunk at a time; the folder is written
under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..columns import hparam_column
from ..hdf5 import METRICS, _check_zoo, _read_hparams, checkpoint_epoch
from .sources import DEFAULT_CSV

EXPORT_CHUNK_TRIALS = 256


@dataclass
class ExportSummary:
    out: Path
    trials: int
    archs: int
    files: int


def _weight_sets(group: h5py.Group) -> list[str]:
    names = list(group["weights"]) if "weights" in group else []
    epochs = sorted(k for k in map(checkpoint_epoch, names) if k is not None)
    return [s for s in ("final", "initial") if s in names] + [f"epoch_{k}" for k in epochs]


def _param_order(f: h5py.File, group: h5py.Group) -> list[str]:
    """The parameters in state-dict order: the generic architecture's own list, a model
    family's module order, else the file's (alphabetical) order."""
    stored = list(group["weights/final"])
    arch = json.loads(group.attrs["arch"])
    model = str(f.attrs["model"])
    order: list[str] = []
    if "parameters" in arch:
        order = [name for name, _ in arch["parameters"]]
    else:
        try:
            from ...data.catalog import IMAGE_SHAPES, NUM_CLASSES
            from ...train.shapes import get_shapes

            shapes = get_shapes(model).param_shapes(
                arch, IMAGE_SHAPES[str(f.attrs["dataset"])], NUM_CLASSES
            )
            order = list(shapes)
        except (KeyError, ValueError):
            order = []
    if sorted(order) != sorted(stored):
        return stored
    return order


def _file_name(trial_id: int, which: str) -> str:
    return f"t{trial_id:05d}.pt" if which == "final" else f"t{trial_id:05d}.{which}.pt"


def _column(which: str) -> str:
    return "file" if which == "final" else f"{which}_file"


def _export_arch(f, name, group, tmp: Path, chunk_trials: int) -> tuple[list[dict], int]:
    import torch

    order = _param_order(f, group)
    sets = _weight_sets(group)
    trials = {k: v[()] for k, v in group["trials"].items()}
    metrics = {m: group[f"metrics/{m}"][()] for m in METRICS if f"metrics/{m}" in group}
    hparams = _read_hparams(group)
    (tmp / name).mkdir()
    n = len(trials["trial_id"])
    rows = []
    files = 0
    for start in range(0, n, chunk_trials):
        stop = min(start + chunk_trials, n)
        chunk = {w: {p: group[f"weights/{w}/{p}"][start:stop] for p in order} for w in sets}
        for k in range(start, stop):
            trial_id = int(trials["trial_id"][k])
            row = {
                "trial_id": trial_id,
                "arch": name,
                "seed": int(trials["seed"][k]),
                "diverged": bool(trials["diverged"][k]),
                "diverged_epoch": int(trials["diverged_epoch"][k]),
            }
            for which in sets:
                state = {
                    p: torch.from_numpy(np.ascontiguousarray(chunk[which][p][k - start]))
                    for p in order
                }
                relative = f"{name}/{_file_name(trial_id, which)}"
                torch.save(state, tmp / relative)
                row[_column(which)] = relative
                files += 1
            rows.append(row | _metric_cells(metrics, k) | _setting_cells(hparams, k))
    return rows, files


def _metric_cells(metrics: dict[str, np.ndarray], k: int) -> dict:
    cells = {}
    for m, values in metrics.items():
        history = values[k].astype(np.float64)  # float32 -> float64 is exact
        cells[m] = history[-1]
        if len(history) > 1:
            cells.update({f"{m}_epoch_{e}": v for e, v in enumerate(history, start=1)})
    return cells


def _setting_cells(hparams: dict[str, np.ndarray], k: int) -> dict:
    return {hparam_column(name): values[k] for name, values in hparams.items()}


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    files = [c for c in table.columns if c == "file" or c.endswith("_file")]
    head = ["trial_id", "arch", "seed", "diverged", "diverged_epoch", *files, *METRICS]
    head = [c for c in head if c in table.columns]
    return table[head + [c for c in table.columns if c not in head]]


def export_zoo(zoo_path, out_dir, chunk_trials: int = EXPORT_CHUNK_TRIALS) -> ExportSummary:
    """Write every trial of the zoo at ``zoo_path`` to the checkpoint folder ``out_dir``
    (which must not exist, or be empty)."""
    zoo_path, out_dir = Path(zoo_path), Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(
            f"-o {out_dir}: exists and is not an empty folder; name a new folder (export "
            "never mixes its files with others)"
        )
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        rows: list[dict] = []
        files = 0
        with h5py.File(zoo_path, "r") as f:
            _check_zoo(f, zoo_path)
            for name, group in f["archs"].items():
                arch_rows, arch_files = _export_arch(f, name, group, tmp, chunk_trials)
                rows += arch_rows
                files += arch_files
        _ordered(pd.DataFrame(rows)).to_csv(tmp / DEFAULT_CSV, index=False)
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportSummary(out_dir, len(rows), len({r["arch"] for r in rows}), files)
