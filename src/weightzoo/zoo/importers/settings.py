"""The trials' training settings, held as compact arrays until the last trial is read.

A setting's type (integer, real or name) and the setting ids are known only once every
trial is read, so the writer keeps one value a setting and trial to the end. Each value is
held in 9 bytes (its kind and 8 bytes: the integer, the float's bits or the index of the
name among the setting's distinct names), not as a Python object, and the setting ids are
computed from these arrays with numpy; the stored values are those of the plain rules of
:func:`settings_as_stored`.
"""

from __future__ import annotations

import numpy as np

from ..columns import SETTING_ID

# a value's kind
MISSING, INTEGER, REAL, NAME = 0, 1, 2, 3
FIRST_CAPACITY = 1024


class GrowingArray:
    """A 1-D numpy array appended to one value at a time (its capacity doubles)."""

    def __init__(self, dtype):
        self._data = np.empty(FIRST_CAPACITY, dtype=dtype)
        self._n = 0

    def append(self, value) -> None:
        if self._n == len(self._data):
            self._data = np.resize(self._data, 2 * len(self._data))
        self._data[self._n] = value
        self._n += 1

    def values(self) -> np.ndarray:
        return self._data[: self._n]


class SettingColumn:
    """One setting's value for each trial, in trial order."""

    def __init__(self):
        self.kinds = GrowingArray(np.int8)
        self.raw = GrowingArray(np.int64)  # integer, float bits or name index
        self.names: dict[str, int] = {}

    def append(self, value) -> None:
        kind, raw = self._encode(value)
        self.kinds.append(kind)
        self.raw.append(raw)

    def _encode(self, value) -> tuple[int, int]:
        if value is None:
            return MISSING, 0
        if isinstance(value, str):
            return NAME, self.names.setdefault(value, len(self.names))
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return INTEGER, int(value)
        return REAL, int(np.float64(value).view(np.int64))

    def as_stored(self) -> np.ndarray:
        """Names when any value is a name (a missing one is ""), else integers when every
        value is one, else reals (a missing one is NaN)."""
        kinds, raw = self.kinds.values(), self.raw.values()
        if (kinds == NAME).any():
            return self._as_names(kinds, raw)
        if (kinds == INTEGER).all():
            return raw.copy()
        reals = raw.view(np.float64).copy()
        reals[kinds == INTEGER] = raw[kinds == INTEGER]
        reals[kinds == MISSING] = np.nan
        return reals

    def _as_names(self, kinds: np.ndarray, raw: np.ndarray) -> np.ndarray:
        if ((kinds == NAME) | (kinds == MISSING)).all():
            table = np.asarray([*self.names, ""], dtype=str)
            return table[np.where(kinds == NAME, raw, len(self.names))]
        # names mixed with numbers (rare): each value written out as text
        names = list(self.names)
        text = {
            MISSING: lambda r: "",
            INTEGER: str,
            REAL: lambda r: str(np.int64(r).view(np.float64)),
            NAME: lambda r: names[r],
        }
        return np.asarray([text[k](int(r)) for k, r in zip(kinds, raw, strict=True)], dtype=str)


def settings_as_stored(columns: dict[str, SettingColumn]) -> dict[str, np.ndarray]:
    """The trials' settings as stored, with ``setting_id``: given, or the index of the
    distinct combination in order of appearance (last, as the trainer writes it)."""
    if not columns:
        return {}
    out = {name: column.as_stored() for name, column in columns.items()}
    if SETTING_ID in out:
        out[SETTING_ID] = out[SETTING_ID].astype(np.int64)
    else:
        out[SETTING_ID] = combination_ids([value_keys(v) for v in out.values()])
    return out


def value_keys(values: np.ndarray) -> np.ndarray:
    """An integer per value, equal where the values' text is equal (NaNs are one value,
    -0.0 and 0.0 two, as their text says)."""
    if values.dtype.kind == "f":
        canonical = np.where(np.isnan(values), np.nan, values)
        return canonical.view(np.int64)
    if values.dtype.kind == "U":
        return np.unique(values, return_inverse=True)[1].astype(np.int64)
    return values.astype(np.int64)


def combination_ids(keys: list[np.ndarray]) -> np.ndarray:
    """The index of each trial's combination of keys among the distinct combinations, in
    order of first appearance."""
    _, first, inverse = np.unique(
        np.stack(keys, axis=1), axis=0, return_index=True, return_inverse=True
    )
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]
