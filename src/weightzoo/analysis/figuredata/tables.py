"""Light views of the features tables for the figures that draw from them (Figs 2-4, 8-10).

Reading a table here needs pandas only: the figure jobs never import the code that
computes the tables (:mod:`weightzoo.analysis.features`, which loads torch). Columns:
``docs/features.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from ..groups import group_counts


def read_tables(paths: Sequence[str | os.PathLike]) -> list[pd.DataFrame]:
    """One features table per path, in order; an error if there are none."""
    if not paths:
        raise ValueError("no features tables given")
    return [pd.read_parquet(p) for p in paths]


def trial_counts(df: pd.DataFrame) -> dict[str, int]:
    """Trials per group in a features table (each trial once; every group, 0 if empty)."""
    return group_counts(df.drop_duplicates(["arch", "trial_id"]))


def layer_labels(df: pd.DataFrame) -> list[str]:
    """The table's layer labels, input side first (union over architectures)."""
    return list(dict.fromkeys(df.sort_values("layer_index", kind="stable")["layer"]))


def consecutive_layers(df: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs of consecutive layers (l, l+1) of each architecture of the table, union over
    architectures, by position: an imported zoo's architectures may name their layers
    differently, and a pair is drawn only where one network has both layers."""
    layers = df.drop_duplicates(["arch", "layer_index"])
    pairs: dict[tuple[str, str], int] = {}
    for _, block in layers.groupby("arch", sort=False):
        labels = block.sort_values("layer_index", kind="stable")["layer"].tolist()
        for position, pair in enumerate(zip(labels[:-1], labels[1:], strict=True)):
            pairs.setdefault(pair, position)
    return sorted(pairs, key=pairs.__getitem__)  # stable: ties keep their first-seen order


def group_rules(tables: Sequence[pd.DataFrame]) -> dict[str, str]:
    """Experiment -> the rule that made its groups (``bands`` where unrecorded)."""
    rules: dict[str, str] = {}
    for df in tables:
        column = df["group_rule"] if "group_rule" in df else pd.Series("bands", index=df.index)
        pairs = pd.DataFrame({"experiment": df["experiment"], "rule": column}).drop_duplicates()
        for experiment, rule in pairs.groupby("experiment", sort=False)["rule"]:
            rules[str(experiment)] = ",".join(rule.astype(str))
    return rules


def layer_values(
    df: pd.DataFrame, column: str, layers: Sequence[str], state: str = "final"
) -> tuple[pd.DataFrame, int]:
    """Per trial, ``column`` of each of ``layers`` (one column per layer) and its ``group``.

    Trials of architectures lacking one of ``layers`` are ignored; trials with a NaN value
    (non-finite weights) are left out and counted: their number is returned second."""
    layers = list(layers)
    rows = df[(df["state"] == state) & df["layer"].isin(layers)]
    keys = ["arch_index", "trial_id"]
    has_all = rows.groupby(keys)["layer"].nunique() == len(layers)
    wide = rows.pivot(index=keys, columns="layer", values=column).reindex(columns=layers)
    wide = wide[has_all.reindex(wide.index, fill_value=False)]
    complete = wide.notna().all(axis=1)
    groups = rows.drop_duplicates(keys).set_index(keys)["group"]
    kept = wide[complete].join(groups)
    return kept.reset_index(), int((~complete).sum())
