"""How a trial's training settings are named as table columns (standard library only).

A zoo that varies training stores each trial's values of the varied settings
(``ArchTrials.hparams``, ``hparams/<name>`` in the HDF5 file, ``docs/hdf5.md``); every table
built from its trials carries them as ``setting_id`` and one ``hp_<name>`` column per
setting. Tables without such columns come from zoos whose settings are all fixed. Kept
free of numpy and pandas so that the light column lists of :mod:`weightzoo.analysis.columns`
can name them too.
"""

from __future__ import annotations

from collections.abc import Iterable

# the sampled setting a trial trained (trials of one setting differ only by their seed)
SETTING_ID = "setting_id"
HPARAM_PREFIX = "hp_"


def hparam_column(name: str) -> str:
    """The column of one stored name: ``lr`` -> ``hp_lr``; ``setting_id`` keeps its name."""
    return name if name == SETTING_ID else f"{HPARAM_PREFIX}{name}"


def is_hparam_column(column: str) -> bool:
    """Whether ``column`` holds a training setting (``setting_id`` or ``hp_<name>``)."""
    return column == SETTING_ID or column.startswith(HPARAM_PREFIX)


def hparam_columns(columns: Iterable[str]) -> list[str]:
    """The setting columns among ``columns``: ``setting_id`` first, then the ``hp_``
    columns in their order; empty for a table of a zoo with fixed settings."""
    found = [str(c) for c in columns if is_hparam_column(str(c))]
    return sorted(found, key=lambda c: c != SETTING_ID)  # stable: hp_ keep their order


def nullable_setting_id(table):
    """``table`` (a pandas DataFrame; duck-typed, so this module imports no pandas) with
    ``setting_id`` as pandas' nullable ``Int64`` where some rows have none (architectures
    of one zoo that vary nothing): ids stay integers instead of turning into floats."""
    if SETTING_ID in table and table[SETTING_ID].isna().any():
        return table.assign(**{SETTING_ID: table[SETTING_ID].astype("Int64")})
    return table
