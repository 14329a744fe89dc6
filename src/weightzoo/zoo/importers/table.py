"""The trials table of a checkpoint folder, and accuracies in a stated or inferred unit.

Columns (``docs/import.md``): ``file`` (the final state dict, relative to the CSV), the
final ``test_acc`` (required), optional ``train_acc``, ``test_loss``, ``train_loss``,
per-epoch ``<metric>_epoch_<k>``, more weight files ``initial_file`` and
``epoch_<k>_file``, an architecture label ``arch``, ``trial_id``, ``seed``, ``diverged``,
``diverged_epoch``, ``setting_id``; every other column is a training setting (a leading
``hp_`` is dropped from its name).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..columns import HPARAM_PREFIX, SETTING_ID
from ..hdf5 import METRICS, checkpoint_name
from .errors import ZooImportError

UNITS = ("fraction", "percent")
ACCURACIES = ("test_acc", "train_acc")
FILE_COLUMNS = ("file", "path", "checkpoint")
# accepted spellings of the final metrics, weightzoo's own first
FINAL_COLUMNS = {
    "test_acc": ("test_acc", "test_accuracy", "accuracy", "acc"),
    "train_acc": ("train_acc", "train_accuracy"),
    "test_loss": ("test_loss",),
    "train_loss": ("train_loss",),
}
PER_EPOCH = re.compile(r"(train_loss|train_acc|test_loss|test_acc)_epoch_([1-9][0-9]*)")
WEIGHT_FILE = re.compile(r"(initial|epoch_[1-9][0-9]*)_file")
IDENTITY = ("arch", "trial_id", "seed", "diverged", "diverged_epoch")


# --------------------------------------------------------------------------- units


def resolve_unit(values: np.ndarray, rows: list[str], unit: str | None, what: str) -> str:
    """The unit of ``values`` ([N, K] accuracies, row ``i`` named ``rows[i]``): ``unit``
    when stated (every finite value must fit it), else fraction when all lie in [0, 1],
    percent when all lie in [0, 100]; anything else is an error naming the row."""
    if unit is not None and unit not in UNITS:
        raise ZooImportError(f"accuracy unit {unit!r}: use one of {', '.join(UNITS)}")
    values = np.asarray(values, dtype=np.float64).reshape(len(rows), -1)
    finite = np.isfinite(values)
    top = {"fraction": 1.0, "percent": 100.0}
    if unit is None:
        outside = finite & ((values < 0) | (values > 100))
        if outside.any():
            i, j = np.argwhere(outside)[0]
            raise ZooImportError(
                f"{rows[i]}: {what} {values[i, j]:g} is outside [0, 1] (fractions) and "
                "[0, 100] (percent); fix the value, or state the unit with "
                "--accuracy-unit fraction|percent (source: accuracy_unit)"
            )
        return "percent" if (finite & (values > 1)).any() else "fraction"
    outside = finite & ((values < 0) | (values > top[unit]))
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise ZooImportError(
            f"{rows[i]}: {what} {values[i, j]:g} is outside [0, {top[unit]:g}], the range of "
            f"the stated unit {unit}; fix the value or the unit"
        )
    return unit


def as_fraction(values, unit: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values / 100.0 if unit == "percent" else values


# --------------------------------------------------------------------------- the CSV


@dataclass
class Row:
    """One trial as its CSV row gives it."""

    where: str
    files: dict[str, Path]  # weight set -> file
    metrics: dict[str, np.ndarray]  # name -> [E], accuracies as fractions
    label: str | None = None
    trial_id: int | None = None
    seed: int = -1
    diverged: bool = False
    diverged_epoch: int | None = None
    hparams: dict[str, object] = field(default_factory=dict)


@dataclass
class Table:
    """The CSV as columns of numbers and Arrow strings, no Python object a trial (a few
    numbers and a file name a trial: the table of a large zoo stays small); :meth:`rows`
    builds each trial's :class:`Row` as it is read."""

    csv: Path
    files: dict[str, pd.api.extensions.ExtensionArray]  # weight set -> [N] file names
    metrics: dict[str, np.ndarray]  # name -> [N, E], accuracies as fractions (given ones)
    labels: pd.api.extensions.ExtensionArray | None  # [N] str, NaN where none
    ids: np.ndarray | None
    seeds: np.ndarray | None
    diverged: np.ndarray | None
    diverged_epoch: np.ndarray | None
    hparams: dict[str, np.ndarray | pd.api.extensions.ExtensionArray]
    epochs: int
    accuracy_unit: str

    @property
    def weight_sets(self) -> list[str]:
        return list(self.files)

    @property
    def hparam_names(self) -> list[str]:
        return list(self.hparams)

    def __len__(self) -> int:
        return len(self.files["final"])

    def order(self) -> np.ndarray:
        """The rows in trial-id order when the CSV gives ids (a zoo holds each
        architecture's trials in id order), else in CSV order."""
        if self.ids is None:
            return np.arange(len(self))
        return np.argsort(self.ids, kind="stable")

    def rows(self) -> Iterator[Row]:
        for i in self.order():
            yield self.row(int(i))

    def row(self, i: int) -> Row:
        def cell(values, default=None):
            return default if values is None else values[i]

        epoch = cell(self.diverged_epoch)
        label = cell(self.labels)
        return Row(
            where=_line(self.csv, i),
            files={which: self._file(which, i) for which in self.files},
            metrics={m: self._metric(m, i) for m in METRICS},
            label=None if pd.isna(label) else label,
            trial_id=None if self.ids is None else int(self.ids[i]),
            seed=int(cell(self.seeds, -1)),
            diverged=bool(cell(self.diverged, False)),
            diverged_epoch=None if epoch is None else int(epoch),
            hparams={k: v[i] for k, v in self.hparams.items()},
        )

    def _file(self, which: str, i: int) -> Path:
        return self.csv.parent / self.files[which][i]

    def _metric(self, m: str, i: int) -> np.ndarray:
        if m not in self.metrics:  # no column gives it
            return np.full(self.epochs, np.nan)
        return self.metrics[m][i]


class LineNames:
    """``names[i]``: how errors name row ``i`` of the CSV (``<csv> line <i + 2>``), made
    when asked for rather than held for every row."""

    def __init__(self, csv: Path, rows: int):
        self.csv, self.rows = csv, rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i) -> str:
        return _line(self.csv, int(i))


def read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ZooImportError(
            f"{path}: no such file; a checkpoint folder needs a CSV naming each trial's "
            "file and accuracy (trials.csv in the folder, or name it with --csv)"
        )
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ZooImportError(f"{path}: not a readable CSV ({' '.join(str(e).split())})") from None


def _pick(df: pd.DataFrame, names, csv: Path, what: str, required: bool) -> str | None:
    found = [n for n in names if n in df.columns]
    if len(found) > 1:
        raise ZooImportError(f"{csv}: columns {found} all give the {what}; keep one")
    if not found and required:
        raise ZooImportError(
            f"{csv}: no {what} column (columns: {', '.join(map(str, df.columns))}); add "
            f"one named {names[0]!r}" + (" (fraction or percent)" if "acc" in names[0] else "")
        )
    return found[0] if found else None


def _line(csv: Path, i: int) -> str:
    return f"{csv} line {i + 2}"  # the header is line 1


def _metric_columns(df: pd.DataFrame, csv: Path) -> tuple[dict[str, dict[int, str]], dict]:
    per_epoch: dict[str, dict[int, str]] = {m: {} for m in METRICS}
    for column in df.columns:
        m = PER_EPOCH.fullmatch(str(column))
        if m:
            per_epoch[m.group(1)][int(m.group(2))] = column
    finals = {m: _pick(df, FINAL_COLUMNS[m], csv, m, m == "test_acc") for m in METRICS}
    return per_epoch, finals


def _metrics(df, csv, per_epoch, finals, epochs) -> dict[str, np.ndarray]:
    """``{metric: [N, E]}``: the per-epoch columns where given, else the final value in
    the last epoch (the earlier ones NaN)."""
    out = {}
    n = len(df)
    for m in METRICS:
        arr = np.full((n, epochs), np.nan)
        for k, column in per_epoch[m].items():
            arr[:, k - 1] = _numbers(df[column], csv, column)
        final = finals[m]
        if final is not None:
            values = _numbers(df[final], csv, final)
            if per_epoch[m]:
                last = arr[:, -1]
                differs = ~((last == values) | (np.isnan(last) & np.isnan(values)))
                if differs.any():
                    i = int(np.argmax(differs))
                    raise ZooImportError(
                        f"{_line(csv, i)}: {final} {values[i]:g} differs from its last "
                        f"per-epoch value {m}_epoch_{epochs} {last[i]:g}; they must agree"
                    )
            arr[:, -1] = values
        out[m] = arr
    return out


def _numbers(column: pd.Series, csv: Path, name) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    bad = column.notna().to_numpy() & np.isnan(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise ZooImportError(
            f"{_line(csv, i)}: {name} {column.iat[i]!r} is not a number; write a number "
            "(or leave the cell empty where it is unknown)"
        )
    return values


def _weight_columns(df: pd.DataFrame, file_column: str) -> dict[str, str]:
    columns = {"final": file_column}
    extra = {}
    for column in df.columns:
        m = WEIGHT_FILE.fullmatch(str(column))
        if m:
            extra[m.group(1)] = column
    epochs = sorted((int(k.split("_")[1]), k) for k in extra if k != "initial")
    if "initial" in extra:
        columns["initial"] = extra["initial"]
    columns.update({checkpoint_name(e): extra[k] for e, k in epochs})
    return columns


def _identity(df, csv, column, kind):
    if column not in df.columns:
        return None
    series = df[column]
    if kind == "int" and pd.api.types.is_integer_dtype(series):
        return series.to_numpy(dtype=np.int64)  # as written: seeds use all 64 bits
    if kind == "int":
        values = _numbers(series, csv, column)
        bad = np.isnan(values) | (values != np.round(values))
        if bad.any():
            i = int(np.argmax(bad))
            raise ZooImportError(f"{_line(csv, i)}: {column} {series.iat[i]!r} is not an integer")
        return values.astype(np.int64)
    if kind == "bool":
        text = series.astype(str).str.strip().str.lower()
        truth = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
        unknown = ~text.isin(list(truth) + ["nan", ""])
        if unknown.any():
            i = int(np.argmax(unknown.to_numpy()))
            raise ZooImportError(f"{_line(csv, i)}: {column} {series.iat[i]!r} is not true/false")
        return text.map(lambda t: truth.get(t, False)).to_numpy(dtype=bool)
    return series.astype(str).where(series.notna()).array


def _hparams(df: pd.DataFrame, used: set) -> dict[str, np.ndarray]:
    out = {}
    for column in df.columns:
        if column in used:
            continue
        name = str(column)
        name = name if name == SETTING_ID else name.removeprefix(HPARAM_PREFIX)
        series = df[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            out[name] = series.to_numpy()
        else:
            out[name] = series.fillna("").astype(str).array
    return out


def _check_unique_ids(ids: np.ndarray, labels, csv: Path) -> None:
    """The first row (in CSV order) whose label and trial id an earlier row has is an
    error naming both lines; found by sorting, holding 8 bytes a row or so."""
    codes = np.zeros(len(ids), dtype=np.int64) if labels is None else pd.factorize(labels)[0]
    order = np.lexsort((ids, codes))  # stable: a key's rows stay in CSV order
    repeat = (codes[order][1:] == codes[order][:-1]) & (ids[order][1:] == ids[order][:-1])
    if not repeat.any():
        return
    later = order[1:][repeat]
    k = int(np.flatnonzero(repeat)[np.argmin(later)])  # the first repeat in CSV order
    while k > 0 and repeat[k - 1]:  # back to its key's first row
        k -= 1
    i, first = int(later.min()), int(order[k])
    label = f" of architecture {labels[i]}" if labels is not None and pd.notna(labels[i]) else ""
    raise ZooImportError(
        f"{_line(csv, i)}: trial_id {ids[i]}{label} is also on line {first + 2}; "
        "trial ids must be unique within an architecture"
    )


def read_table(csv: Path, unit: str | None) -> Table:
    """The checkpoint folder's CSV as columns, accuracies as fractions; every cell is
    checked here, before any weight is read."""
    df = read_csv(csv)
    if df.empty:
        raise ZooImportError(f"{csv}: no rows; one row per trial")
    file_column = _pick(df, FILE_COLUMNS, csv, "file (the trial's state dict)", True)
    per_epoch, finals = _metric_columns(df, csv)
    epochs = max([1, *(max(v) for v in per_epoch.values() if v)])
    metrics = _metrics(df, csv, per_epoch, finals, epochs)
    lines = LineNames(csv, len(df))
    accuracy = np.concatenate([metrics[m] for m in ACCURACIES], axis=1)
    unit = resolve_unit(accuracy, lines, unit, "accuracy")
    del accuracy
    for m in ACCURACIES:
        metrics[m] = as_fraction(metrics[m], unit)
    weight_columns = _weight_columns(df, file_column)
    labels = _identity(df, csv, "arch", "str")
    ids = _identity(df, csv, "trial_id", "int")
    seeds = _identity(df, csv, "seed", "int")
    diverged = _identity(df, csv, "diverged", "bool")
    diverged_epoch = _identity(df, csv, "diverged_epoch", "int")
    if ids is not None:
        _check_unique_ids(ids, labels, csv)
    used = {*weight_columns.values(), *IDENTITY}
    used |= {c for c in finals.values() if c} | {c for v in per_epoch.values() for c in v.values()}
    hparams = _hparams(df, used)
    files = {
        which: _file_names(df, column, which, lines) for which, column in weight_columns.items()
    }
    return Table(
        csv=csv,
        files=files,
        metrics={m: metrics[m] for m in given_metrics(per_epoch, finals)},
        labels=labels,
        ids=ids,
        seeds=seeds,
        diverged=diverged,
        diverged_epoch=diverged_epoch,
        hparams=hparams,
        epochs=epochs,
        accuracy_unit=unit,
    )


def given_metrics(per_epoch: dict, finals: dict) -> list[str]:
    """The metrics some column gives (the others are NaN for every trial)."""
    return [m for m in METRICS if per_epoch[m] or finals[m] is not None]


def _file_names(df: pd.DataFrame, column: str, which: str, lines: LineNames):
    """A file column's names, stripped, as Arrow strings; an empty cell is an error
    naming its row."""
    names = df[column].astype(str).str.strip()
    empty = (df[column].isna() | (names == "")).to_numpy()
    if empty.any():
        i = int(np.argmax(empty))
        raise ZooImportError(f"{lines[i]}: {column} is empty; name the trial's {which} state dict")
    return names.array
