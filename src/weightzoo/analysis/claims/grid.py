"""The layout of the verdict grid that claims.md and the claims figure both show: its rows
(claim and test), its columns (an experiment's layers) and what a cell says."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .definitions import CLAIMS, RECONSTRUCT, UNIVARIATE

ACCURACY_LABELS = {
    "1": "std",
    "4a": "kurtosis",
    "4b": "mass near 0",
    "5b": "mean strength",
    "8a": "WW alpha",
    "9a": "shared-representation error",
    "9b": "own-predictor error",
}


def test_rows() -> list[tuple[str, str, str]]:
    """(claim, test, label) of the summary grid rows, in order: the group claims, then the
    rank correlations with accuracy."""
    kinds = {"3": "layers", "7": "layers", "8b": "range"}
    rows = [(c, kinds.get(c, "group"), f"{c}: {text}") for c, text in CLAIMS.items()]
    rows += [
        (c, "accuracy", f"{c}: rank correlation of {ACCURACY_LABELS[c]} with accuracy")
        for c in (*UNIVARIATE, "5b", *RECONSTRUCT)
    ]
    return rows


def column_order(df: pd.DataFrame) -> list[str]:
    """The ``layer`` values of one experiment's rows: layers (input side first), then the
    layer pairs of claim 5a, then claim 3's "final vs others"."""
    layers = list(dict.fromkeys(df.loc[df["test"] == "accuracy", "layer"]))
    pairs = list(dict.fromkeys(df.loc[df["claim"] == "5a", "layer"]))
    rest = [c for c in dict.fromkeys(df["layer"]) if c not in layers and c not in pairs]
    return layers + pairs + rest


def verdict_cell(row: Mapping) -> str:
    """One scope's verdict in the Markdown grid: yes / NO / ? (tested) or n/a (untested)."""
    if not np.isfinite(row["p_value"]):
        return "n/a"
    return {"supported": "yes", "contradicted": "NO", "inconclusive": "?"}[row["verdict"]]
