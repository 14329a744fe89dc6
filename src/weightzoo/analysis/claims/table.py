"""The claims table of every experiment (:func:`test_claims`), its CSV and its Markdown
summary (``results/claims/claims.{csv,md}``; :mod:`.files` reads the CSV back)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ...io import atomic_output
from .definitions import (
    COLUMNS,
    REQUIRED_COLUMNS,
    REST_LABEL,
    SCOPES,
    SETTINGS_SCOPE,
    TRIAL_KEY,
)
from .grid import column_order, test_rows, verdict_cell
from .reconstruct_rows import per_trial, reconstruct_rows
from .rows import experiment_claims
from .settings import ClaimSettings
from .verdicts import add_verdicts


def test_claims(
    features: pd.DataFrame,
    settings: ClaimSettings | None = None,
    reconstruct: pd.DataFrame | None = None,
    claim_ratio: float = 0.1,
) -> pd.DataFrame:
    """The claims table of every experiment in ``features`` (BH across the whole table);
    with ``reconstruct`` (the reconstruction tables, weightzoo.analysis.reconstruct) also
    claim 9 of the experiments it holds (9b at the ratio ``claim_ratio``)."""
    settings = settings or ClaimSettings()
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    acc = f"final_{settings.accuracy}_acc"
    if acc not in features.columns:
        missing.append(acc)
    if missing:
        raise ValueError(
            f"features table lacks column(s) {missing}; regenerate it with the rule `features`"
        )
    rows = []
    for experiment, df in features.groupby("experiment", sort=False):
        rows += experiment_claims(df, settings)
        if reconstruct is not None and (reconstruct["experiment"] == experiment).any():
            rows += _reconstruct_claims(df, reconstruct, settings, claim_ratio)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    return add_verdicts(table, settings)[list(COLUMNS)]


test_claims.__test__ = False  # not a pytest test despite its name


def _reconstruct_claims(features, reconstruct, settings, claim_ratio) -> list[dict]:
    first = features.iloc[0]
    exp = {k: first[k] for k in ("experiment", "model", "dataset")}
    trials = per_trial(reconstruct[reconstruct["experiment"] == exp["experiment"]], claim_ratio)
    accuracy = features.groupby(TRIAL_KEY)[f"final_{settings.accuracy}_acc"].first()
    return reconstruct_rows(exp, trials, accuracy, settings)


def claims_markdown(table: pd.DataFrame, settings: ClaimSettings) -> str:
    """A verdict grid per experiment (test x layer, "pooled / within") and the detail rows."""
    legend = (
        f"High vs {REST_LABEL} trials, final weights. Verdicts: yes = supported (BH q < "
        f"{settings.alpha} and the 95 % CI on the expected side of 0), NO = contradicted "
        "(CI on the other side), ? = inconclusive, n/a = not testable (too few trials; "
        "within: no architecture holds both groups). Cells: pooled / within architecture. "
        "Method: docs/claims.md."
    )
    if (table["scope"] == SETTINGS_SCOPE).any():
        legend += (
            f" Experiments whose training settings vary per trial add a third verdict, "
            f"{SETTINGS_SCOPE}: within architecture with the settings controlled (rank "
            "correlations with accuracy only; the group contrasts are n/a there)."
        )
    lines = ["# The paper's claims, tested", "", legend, ""]
    scopes = (*SCOPES, SETTINGS_SCOPE)
    for experiment, df in table.groupby("experiment", sort=False):
        lines += [f"## {experiment}", ""]
        columns = column_order(df)
        lines.append("| claim | " + " | ".join(columns) + " |")
        lines.append("|---|" + "---|" * len(columns))
        for claim, test, label in test_rows():
            cells = []
            for column in columns:
                sel = df[(df["claim"] == claim) & (df["test"] == test) & (df["layer"] == column)]
                by_scope = {r["scope"]: r for _, r in sel.iterrows()}
                cells.append(" / ".join(verdict_cell(by_scope[s]) for s in scopes if s in by_scope))
            if any(cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## All rows (rank correlations per architecture: in claims.csv)",
        "",
    ]
    detail = table[~table["scope"].str.startswith("arch=")]
    head = ("experiment", "claim", "test", "scope", "layer", "statistic", "estimate",
            "ci_low", "ci_high", "q_value", "verdict", "n_high", "n_rest", "note")  # fmt: skip
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for _, r in detail.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in head) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "–"
        return f"{value:.2g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value).replace("|", "/")


def write_claims(
    table: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike, settings
) -> None:
    with atomic_output(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(md_path) as tmp:
        tmp.write_text(claims_markdown(table, settings))
