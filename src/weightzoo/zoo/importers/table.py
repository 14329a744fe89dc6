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
    """The CSV as columns (a few numbers and a file name a trial: the table of a large
    zoo stays small); :meth:`rows` builds each trial's :class:`Row` as it is read."""

    csv: Path
    files: dict[str, np.ndarray]  # weight set -> [N] file names as written (str)
    metrics: dict[str, np.ndarray]  # name -> [N, E], accuracies as fractions
    labels: list | None
    ids: np.ndarray | None
    seeds: np.ndarray | None
    diverged: np.ndarray | None
    diverged_epoch: np.ndarray | None
    hparams: dict[str, np.ndarray]
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
        return Row(
            where=_line(self.csv, i),
            files={which: self._file(which, i) for which in self.files},
            metrics={m: self.metrics[m][i] for m in METRICS},
            label=cell(self.labels),
            trial_id=None if self.ids is None else int(self.ids[i]),
            seed=int(cell(self.seeds, -1)),
            diverged=bool(cell(self.diverged, False)),
            diverged_epoch=None if epoch is None else int(epoch),
            hparams={k: v[i] for k, v in self.hparams.items()},
        )

    def _file(self, which: str, i: int) -> Path:
        return self.csv.parent / self.files[which][i]


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
    return [None if pd.isna(v) else str(v) for v in series]


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
            out[name] = series.fillna("").astype(str).to_numpy()
    return out


def _check_unique_ids(ids, labels, csv: Path) -> None:
    seen: dict = {}
    for i, key in enumerate(zip(labels, ids, strict=True)):
        if key in seen:
            label = f" of architecture {key[0]}" if key[0] is not None else ""
            raise ZooImportError(
                f"{_line(csv, i)}: trial_id {key[1]}{label} is also on line {seen[key] + 2}; "
                "trial ids must be unique within an architecture"
            )
        seen[key] = i


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
    lines = [_line(csv, i) for i in range(len(df))]
    accuracy = np.concatenate([metrics[m] for m in ACCURACIES], axis=1)
    unit = resolve_unit(accuracy, lines, unit, "accuracy")
    for m in ACCURACIES:
        metrics[m] = as_fraction(metrics[m], unit)
    weight_columns = _weight_columns(df, file_column)
    labels = _identity(df, csv, "arch", "str")
    ids = _identity(df, csv, "trial_id", "int")
    seeds = _identity(df, csv, "seed", "int")
    diverged = _identity(df, csv, "diverged", "bool")
    diverged_epoch = _identity(df, csv, "diverged_epoch", "int")
    if ids is not None:
        _check_unique_ids(ids.tolist(), labels or [None] * len(df), csv)
    used = {*weight_columns.values(), *IDENTITY}
    used |= {c for c in finals.values() if c} | {c for v in per_epoch.values() for c in v.values()}
    hparams = _hparams(df, used)
    files = {
        which: _file_names(df, column, which, lines) for which, column in weight_columns.items()
    }
    return Table(
        csv=csv,
        files=files,
        metrics={m: metrics[m] for m in METRICS},
        labels=None if labels is None else list(labels),
        ids=ids,
        seeds=seeds,
        diverged=diverged,
        diverged_epoch=diverged_epoch,
        hparams=hparams,
        epochs=epochs,
        accuracy_unit=unit,
    )


def _file_names(df: pd.DataFrame, column: str, which: str, lines: list[str]) -> np.ndarray:
    """A file column's names, stripped; an empty cell is an error naming its row."""
    names = np.empty(len(df), dtype=object)
    for i, cell in enumerate(df[column]):
        if pd.isna(cell) or not str(cell).strip():
            raise ZooImportError(
                f"{lines[i]}: {column} is empty; name the trial's {which} state dict"
            )
        names[i] = str(cell).strip()
    return names
