"""The Small CNN Zoo layout (Unterthiner et al. 2020, google-research
``dnn_predict_accuracy``): per dataset one weight matrix (``weights.npy``, one row per
checkpoint, each row a network's 4970 parameters flattened), a metrics table
(``metrics.csv.gz``, one row per matrix row: ``modeldir``, ``step``, ``test_accuracy``,
``train_accuracy``, losses and the ``config.*`` training settings) and ``layout.csv``
(which columns of the matrix belong to which layer).

Rows of one ``modeldir`` are one trial; its checkpoints sit at steps that are turned into
epochs with ``config.epochs`` and the largest step of trials with the same
``config.train_fraction`` (all trials train the same epochs; steps per epoch depend on the
training set's size). What the README does not fix (the columns of ``layout.csv``, the
order of a kernel's entries) is read as ``docs/import.md`` says and may need a check
against the real download.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..hdf5 import checkpoint_name
from .errors import ZooImportError
from .provenance import file_sha256, relative
from .records import SourcePlan, TrialRecord, empty_metrics, weight_sets_of
from .sources import (
    SMALL_CNN_LAYOUT,
    SMALL_CNN_METRICS,
    SMALL_CNN_WEIGHTS,
    SMALL_CNN_ZOO,
    first_existing,
)
from .table import LineNames, as_fraction, resolve_unit

CONFIG_PREFIX = "config."
# the README: "trained for a total of 86 epochs" (config.epochs, when the table lacks it)
README_EPOCHS = 86
METRIC_COLUMNS = {
    "test_acc": "test_accuracy",
    "train_acc": "train_accuracy",
    "test_loss": "test_loss",
    "train_loss": "train_loss",
}
# the notebook's per-layer boundaries of a 4970-vector: each layer's bias, then its kernel
# (Keras layouts: conv [kh, kw, in, out], dense [in, out])
BUILTIN_LAYOUT = (
    ("conv1.bias", 0, 16, (16,)),
    ("conv1.weight", 16, 160, (3, 3, 1, 16)),
    ("conv2.bias", 160, 176, (16,)),
    ("conv2.weight", 176, 2480, (3, 3, 16, 16)),
    ("conv3.bias", 2480, 2496, (16,)),
    ("conv3.weight", 2496, 4800, (3, 3, 16, 16)),
    ("dense.bias", 4800, 4810, (10,)),
    ("dense.weight", 4810, 4970, (16, 10)),
)
LAYOUT_COLUMNS = {
    "name": ("varname", "name", "variable", "layer"),
    "start": ("start_idx", "start", "begin"),
    "end": ("end_idx", "end", "stop"),
    "shape": ("shape",),
}


def _torch_name(varname: str) -> str:
    """``sequential/conv2d/kernel:0`` -> ``sequential.conv2d.weight``."""
    parts = [p for p in re.sub(r":\d+$", "", str(varname)).split("/") if p]
    if parts and parts[-1] == "kernel":
        parts[-1] = "weight"
    return ".".join(parts)


def _shape(text, where: str) -> tuple[int, ...]:
    try:
        value = ast.literal_eval(str(text).replace("x", ","))
        shape = (value,) if isinstance(value, int) else tuple(int(d) for d in value)
    except (ValueError, SyntaxError, TypeError):
        raise ZooImportError(f"{where}: shape {text!r} is not a tuple of integers") from None
    return shape


def read_layout(path: Path | None, width: int) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """``[(torch-style name, start, end, Keras shape)]`` from ``layout.csv``, or the
    built-in layout of the 4970-parameter network when there is no such file."""
    if path is None:
        if width != BUILTIN_LAYOUT[-1][2]:
            raise ZooImportError(
                f"the weight matrix has {width} columns, not the 4970 of the README's "
                f"network, and there is no {SMALL_CNN_LAYOUT}; add the layout file"
            )
        return list(BUILTIN_LAYOUT)
    table = pd.read_csv(path)
    found = {}
    for key, names in LAYOUT_COLUMNS.items():
        hit = [n for n in names if n in table.columns]
        if not hit:
            raise ZooImportError(
                f"{path}: no column for the {key} ({' or '.join(names)}); columns: "
                f"{', '.join(map(str, table.columns))}"
            )
        found[key] = hit[0]
    layout = []
    for i, r in table.iterrows():
        where = f"{path} line {int(i) + 2}"
        start, end = int(r[found["start"]]), int(r[found["end"]])
        shape = _shape(r[found["shape"]], where)
        if int(np.prod(shape)) != end - start:
            raise ZooImportError(f"{where}: shape {shape} does not hold {end - start} values")
        is_kernel = str(r[found["name"]]).split("/")[-1].startswith("kernel")
        name = _torch_name(r[found["name"]])
        if not is_kernel and len(shape) > 1:
            raise ZooImportError(f"{where}: {r[found['name']]} has shape {shape} but is no kernel")
        layout.append((name, start, end, shape))
    if max(e for _, _, e, _ in layout) > width:
        raise ZooImportError(f"{path}: reaches past the {width} columns of the weight matrix")
    return layout


def to_state_dict(row: np.ndarray, layout) -> dict[str, np.ndarray]:
    """One flattened network as a state dict in torch layouts, layer by layer in the
    layout's order, each layer's weight before its bias (as torch lists them)."""
    layers = list(dict.fromkeys(name.rsplit(".", 1)[0] for name, *_ in layout))
    order = sorted(
        layout,
        key=lambda x: (layers.index(x[0].rsplit(".", 1)[0]), not x[0].endswith("weight")),
    )
    state = {}
    for name, start, end, shape in order:
        values = np.asarray(row[start:end]).reshape(shape)
        if len(shape) == 4:  # Keras conv kernel [kh, kw, in, out] -> torch [out, in, kh, kw]
            values = values.transpose(3, 2, 0, 1)
        elif len(shape) == 2:  # Keras dense kernel [in, out] -> torch [out, in]
            values = values.T
        state[name] = np.ascontiguousarray(values)
    return state


def _read_metrics(path: Path, rows: int) -> pd.DataFrame:
    table = pd.read_csv(path)
    if len(table) != rows:
        raise ZooImportError(
            f"{path}: {len(table)} rows, the weight matrix has {rows}; they must be the same "
            "checkpoints in the same order"
        )
    first = str(table.columns[0])
    if "modeldir" not in table.columns or "step" not in table.columns:
        if not first.startswith("Unnamed"):
            raise ZooImportError(
                f"{path}: no modeldir and step columns and no checkpoint path in the first "
                "column; the metrics table names each row's model folder and step"
            )
        paths = table[first].astype(str)  # .../<model folder>/<file>-<step>
        table["modeldir"] = paths.map(lambda p: "/".join(p.split("/")[:-1]))
        table["step"] = paths.map(lambda p: int(p.rsplit("-", 1)[-1]))
    missing = [c for c in ("test_accuracy",) if c not in table.columns]
    if missing:
        raise ZooImportError(
            f"{path}: no test_accuracy column; it gives each checkpoint's accuracy"
        )
    return table


def _epochs_of(table: pd.DataFrame) -> np.ndarray:
    """Each row's epoch: its step over the largest step of its training-set size."""
    epochs = table.get(f"{CONFIG_PREFIX}epochs", pd.Series(README_EPOCHS, index=table.index))
    size = table.get(f"{CONFIG_PREFIX}train_fraction", pd.Series(1.0, index=table.index))
    last = table.groupby(size.to_numpy())["step"].transform("max").to_numpy(dtype=np.float64)
    steps = table["step"].to_numpy(dtype=np.float64)
    return np.rint(np.where(last > 0, steps / np.maximum(last, 1) * epochs, 0)).astype(int)


def plan(path: Path, accuracy_unit: str | None = None) -> SourcePlan:
    weights_file = first_existing(path, SMALL_CNN_WEIGHTS)
    metrics_file = first_existing(path, SMALL_CNN_METRICS)
    if not path.is_dir() or weights_file is None or metrics_file is None:
        raise ZooImportError(
            f"{path}: not a Small CNN Zoo folder: it needs {' or '.join(SMALL_CNN_WEIGHTS)} "
            f"and {' or '.join(SMALL_CNN_METRICS)} (and {SMALL_CNN_LAYOUT})"
        )
    try:
        matrix = np.load(weights_file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as e:
        raise ZooImportError(f"{weights_file}: not a readable .npy matrix ({e})") from None
    if matrix.ndim != 2:
        raise ZooImportError(f"{weights_file}: shape {matrix.shape}, expected [rows, parameters]")
    layout_file = path / SMALL_CNN_LAYOUT if (path / SMALL_CNN_LAYOUT).is_file() else None
    layout = read_layout(layout_file, matrix.shape[1])
    table = _read_metrics(metrics_file, matrix.shape[0])
    table["_epoch"] = _epochs_of(table).astype(np.int32)
    total = (
        int(table[f"{CONFIG_PREFIX}epochs"].max())
        if f"{CONFIG_PREFIX}epochs" in table
        else README_EPOCHS
    )
    accuracies = [c for c in ("test_accuracy", "train_accuracy") if c in table]
    lines = LineNames(metrics_file, len(table))
    unit = resolve_unit(table[accuracies].to_numpy(np.float64), lines, accuracy_unit, "accuracy")
    models = Models.of(table)
    weight_sets = weight_sets_of(np.unique(table["_epoch"]).tolist(), total)
    settings = [c for c in table.columns if str(c).startswith(CONFIG_PREFIX)]
    firsts = table[settings].iloc[models.first_rows]
    varying = [c for c in settings if firsts[c].nunique(dropna=False) > 1]
    del firsts
    names = [c.removeprefix(CONFIG_PREFIX) for c in varying]
    # each model's settings from its first checkpoint (by step); then only what the
    # trials read is kept: a row's epoch and metrics
    trial_settings = table[varying].iloc[models.starts_in_step_order()].reset_index(drop=True)
    table = table[["_epoch", *(c for c in METRIC_COLUMNS.values() if c in table)]]
    source = SourcePlan(
        fmt=SMALL_CNN_ZOO,
        path=str(path),
        epochs=total,
        n_trials=len(models),
        trials=lambda: iter(()),
        hparam_names=names,
        weight_sets=weight_sets,
        accuracy_unit=unit,
        metadata_files=[f for f in (metrics_file, layout_file) if f is not None],
    )

    def settings_of(g: int) -> dict:
        return {n: _scalar(trial_settings[c].iat[g]) for n, c in zip(names, varying, strict=True)}

    def trials() -> Iterator[TrialRecord]:
        with MatrixRows(weights_file, matrix) as rows_of_matrix:
            yield from trials_of(rows_of_matrix)

    def trials_of(matrix: MatrixRows) -> Iterator[TrialRecord]:
        for g in range(len(models)):
            rows = models.rows(g)
            metrics = empty_metrics(total)
            weights = {}
            for r in rows:
                epoch = int(table["_epoch"].iat[r])
                state = to_state_dict(matrix[r], layout)
                if epoch == 0:
                    weights["initial"] = state
                    continue
                if epoch < total:
                    weights[checkpoint_name(epoch)] = state
                for m, column in METRIC_COLUMNS.items():
                    if column in table:
                        value = float(table[column].iat[r])
                        metrics[m][epoch - 1] = as_fraction(value, unit) if "acc" in m else value
            weights["final"] = to_state_dict(matrix[rows[-1]], layout)
            yield TrialRecord(
                where=f"{metrics_file} model {models.names[g]}",
                weights=weights,
                metrics=metrics,
                hparams=settings_of(g),
            )
        source.content.add(relative(weights_file, path), file_sha256(weights_file))

    source.trials = trials
    return source


class Models:
    """The table's models (``modeldir``, in order of first appearance) and their rows in
    step order, as a few integers a row: one permutation of the rows and where each
    model's rows start in it, not an index array a model."""

    def __init__(self, names, first_rows: np.ndarray, order: np.ndarray, starts: np.ndarray):
        self.names = names  # [models] as the table writes them
        self.first_rows = first_rows  # [models] each one's first row in the table
        self.order = order  # [rows] the rows by model, then step (stable)
        self.starts = starts  # [models + 1] where each model's rows start in ``order``

    @classmethod
    def of(cls, table: pd.DataFrame) -> Models:
        codes, names = pd.factorize(table["modeldir"], sort=False)
        steps = table["step"].to_numpy()
        order = np.lexsort((steps, codes))
        order = order[codes[order] >= 0]  # a row without a model folder is no model's
        counts = np.bincount(codes[order], minlength=len(names))
        starts = np.concatenate([[0], np.cumsum(counts)])
        first_rows = np.full(len(names), len(codes), dtype=np.int64)
        np.minimum.at(first_rows, codes[order], order)
        return cls(names, first_rows, order, starts)

    def __len__(self) -> int:
        return len(self.names)

    def rows(self, g: int) -> np.ndarray:
        """Model ``g``'s rows, by step."""
        return self.order[self.starts[g] : self.starts[g + 1]]

    def starts_in_step_order(self) -> np.ndarray:
        """Each model's row of the smallest step."""
        return self.order[self.starts[:-1]]


class MatrixRows:
    """The rows of a 2-D ``.npy`` matrix, read one at a time with plain file reads.

    A memory map would do it too, but every page it reads stays mapped and counts in the
    import's resident memory until the kernel reclaims it: gigabytes for a full Small CNN
    Zoo, whose trials are read once. ``matrix`` is the file opened with ``mmap_mode="r"``,
    which gives its shape, dtype and where its data starts; a matrix stored in Fortran
    order (a row is not contiguous in the file) is read through it."""

    def __init__(self, path: Path, matrix: np.memmap):
        self.path = path
        self.dtype = matrix.dtype
        self.offset = matrix.offset
        self.row_bytes = matrix.shape[1] * matrix.dtype.itemsize
        self.fortran = matrix if not matrix.flags.c_contiguous else None
        self.file = None

    def __enter__(self) -> MatrixRows:
        self.file = open(self.path, "rb")  # noqa: SIM115 (closed by __exit__)
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def __getitem__(self, row: int) -> np.ndarray:
        if self.fortran is not None:
            return np.array(self.fortran[row])
        self.file.seek(self.offset + row * self.row_bytes)
        return np.frombuffer(self.file.read(self.row_bytes), dtype=self.dtype)


def _scalar(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return float(value) if pd.notna(value) else np.nan
