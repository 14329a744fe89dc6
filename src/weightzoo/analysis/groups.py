"""Accuracy groups of trials (the paper's *non*, *low*, *mid*, *high*) and Table 2.

Rule (:func:`assign_groups`), applied per experiment:

1. *non*: the trial diverged, its accuracies are not finite, or it never left chance
   level: its best (max over epochs) accuracy is ``<= chance_level + chance_tolerance``
   percentage points. Chance level defaults to ``100 / num_classes`` (10 % for ten
   classes); pass the majority-class rate instead (e.g. 11.35 for the MNIST test set).
2. Otherwise the trial's **final** accuracy is matched against bands, by one of two
   rules (``method``, recorded in the ``group_rule`` column):

   * ``bands`` (default): fixed edges in percent, ``{"low": [30, 55], "mid": [80, 82],
     "high": [95, 100]}`` (inclusive, the per-experiment edges of the paper's Table 2);
   * ``relative``: edges as fractions of the range from the worst to the best converged
     (not *non*) trial of the experiment, the paper's text (§3.2: close to the worst,
     around the middle, close to the best): a trial's position is
     ``(acc - worst) / (best - worst)`` in [0, 1], matched against ``relative``
     (default :data:`DEFAULT_RELATIVE`). The worst converged trial is therefore always
     *low* and the best always *high*, on any dataset. With fewer than two distinct
     accuracies there is no range: every converged trial is *between*.

   Where bands overlap the higher group wins (bands are tried high, mid, low).
3. A trial in no band is *between*: kept and reported, never dropped.

``accuracy`` picks test or train accuracy for both steps; the choice is stored in the
``grouped_by`` column and printed with Table 2. Accuracies in zoo files are fractions;
every accuracy this module writes is in percent, rounded to 4 decimals so that float32
values such as 0.95 (stored as 0.9499999881) land on the band edge 95 they stand for.

A zoo that varies its training (per-trial settings, ``docs/hdf5.md``) adds ``setting_id``
and ``hp_<name>`` to the groups file, after ``diverged``, and Table 2 then says per group
how each varied setting is spread (:func:`table2`), so that a group made of the trials of
one bad setting shows as such. Zoos with fixed settings write the same files as before.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..io import atomic_output
from ..zoo.columns import HPARAM_PREFIX, SETTING_ID, hparam_columns, nullable_setting_id
from .group_rules import (
    ACCURACY_KINDS,
    ALL_GROUPS,
    BAND_GROUPS,
    BETWEEN,
    DEFAULT_RELATIVE,
    GROUP_RULES,
    RULE_DESCRIPTIONS,
)
from .group_rules import GROUPS as GROUPS  # re-exported: the figures import it from here

PCT_DECIMALS = 4

ACC_COLUMNS = ("final_train_acc", "final_test_acc", "max_train_acc", "max_test_acc")
GROUPS_CSV_COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "arch",
    "trial_id",
    "seed",
    "diverged",
    *(f"{c}_pct" for c in ACC_COLUMNS),
    "grouped_by",
    "group_rule",
    "group_acc_pct",
    "group",
)
TABLE2_COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "grouped_by",
    "group_rule",
    "group",
    "count",
    "min",
    "median",
    "max",
)
# Table 2's columns when experiments vary their training: the distinct settings a group's
# trials trained, then per varied number hp_<name>_{min,median,max}, per varied name the
# trials with each value, hp_<name>=<value>
N_SETTINGS = "n_settings"
NUMBER_STATS = ("min", "median", "max")
SETTING_DIGITS = 4  # significant digits of a setting's statistics in Table 2


def validate_bands(
    bands: Mapping[str, Sequence[float]], limits: tuple[float, float] | None = None
) -> dict[str, tuple[float, float]]:
    """Check band names (low/mid/high) and edges (two numbers, min <= max, inside
    ``limits`` if given); return them."""
    unknown = sorted(set(bands) - set(BAND_GROUPS))
    if unknown:
        raise ValueError(
            f"unknown accuracy band(s) {unknown}; bands are {list(BAND_GROUPS)} "
            "('non' is decided by divergence / chance level, not by a band)"
        )
    checked = {}
    for name, edges in bands.items():
        lo, hi = (float(x) for x in edges)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"band {name!r}: need [min, max] with min <= max, got {edges!r}")
        if limits is not None and not (limits[0] <= lo and hi <= limits[1]):
            raise ValueError(f"band {name!r}: edges {edges!r} must lie in {list(limits)}")
        checked[name] = (lo, hi)
    return checked


def _percent(table: pd.DataFrame, column: str) -> np.ndarray:
    """``column`` in percent: ``<column>_pct`` if present, else the fraction column x 100."""
    if f"{column}_pct" in table:
        values = table[f"{column}_pct"].to_numpy(dtype=float)
    else:
        values = table[column].to_numpy(dtype=float) * 100.0
    values = np.where(np.isfinite(values), values, np.nan)  # -inf from all-NaN rows
    return np.round(values, PCT_DECIMALS)


def _band_group(values: np.ndarray, bands: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """``values`` (percent, or relative positions) matched against inclusive ``bands``."""
    group = np.full(values.shape, BETWEEN, dtype=object)
    for name in BAND_GROUPS:  # later (higher) bands overwrite earlier ones
        if name in bands:
            lo, hi = bands[name]
            group[(values >= lo) & (values <= hi)] = name
    return group


def relative_position(final_pct: np.ndarray, converged: np.ndarray) -> np.ndarray:
    """``(acc - worst) / (best - worst)`` over the ``converged`` trials, in [0, 1]; NaN
    for the others, and for all when the converged trials span no range."""
    position = np.full(final_pct.shape, np.nan)
    accs = final_pct[converged]
    if accs.size and accs.max() > accs.min():
        worst, best = accs.min(), accs.max()
        position[converged] = (accs - worst) / (best - worst)  # exactly 0 and 1 at the ends
    return position


def relative_edges(
    final_pct: np.ndarray, converged: np.ndarray, relative: Mapping[str, Sequence[float]]
) -> dict[str, tuple[float, float]]:
    """The percent edges that ``relative`` bands stand for in this population (for logs)."""
    accs = final_pct[converged]
    if not accs.size:
        return {}
    worst, span = float(accs.min()), float(accs.max() - accs.min())
    return {
        g: (round(worst + lo * span, 2), round(worst + hi * span, 2))
        for g, (lo, hi) in validate_bands(relative, (0.0, 1.0)).items()
    }


def assign_groups(
    table: pd.DataFrame,
    bands: Mapping[str, Sequence[float]] | None,
    accuracy: str = "test",
    chance_tolerance: float = 2.0,
    chance_level: float | None = None,
    num_classes: int = 10,
    method: str = "bands",
    relative: Mapping[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Return a copy of ``table`` with accuracies in percent and each trial's group.

    ``table`` is :meth:`weightzoo.zoo.hdf5.Zoo.trials_table` (accuracies as fractions) or a
    table from :func:`read_groups_csv` (``*_pct`` columns, which take precedence), so a
    groups file can be regrouped with other bands. Added columns: ``final_train_acc_pct``,
    ``final_test_acc_pct``, ``max_train_acc_pct``, ``max_test_acc_pct``, ``grouped_by``
    (``accuracy``), ``group_rule`` (``method``), ``group_acc_pct`` (the final accuracy
    the bands were matched against) and ``group`` (one of :data:`ALL_GROUPS`). ``bands``
    are used by ``method="bands"``, ``relative`` (fractions, default
    :data:`DEFAULT_RELATIVE`) by ``method="relative"``. See the module docstring.
    """
    if accuracy not in ACCURACY_KINDS:
        raise ValueError(f"accuracy must be one of {ACCURACY_KINDS}, got {accuracy!r}")
    if method not in GROUP_RULES:
        raise ValueError(f"groups method must be one of {GROUP_RULES}, got {method!r}")
    if method == "bands":
        if bands is None:
            raise ValueError("method 'bands' needs bands; give them or use method 'relative'")
        checked = validate_bands(bands)
    else:
        checked = validate_bands(DEFAULT_RELATIVE if relative is None else relative, (0.0, 1.0))
    chance = 100.0 / num_classes if chance_level is None else float(chance_level)

    out = table.copy()
    for column in ACC_COLUMNS:
        out[f"{column}_pct"] = _percent(table, column)
    final = out[f"final_{accuracy}_acc_pct"].to_numpy(dtype=float)
    best = out[f"max_{accuracy}_acc_pct"].to_numpy(dtype=float)
    diverged = out["diverged"].to_numpy(dtype=bool)

    with np.errstate(invalid="ignore"):
        never_left_chance = ~(best > chance + chance_tolerance)  # NaN counts as never
    is_non = diverged | never_left_chance | ~np.isfinite(final)

    if method == "bands":
        group = _band_group(final, checked)
    else:
        group = _band_group(relative_position(final, ~is_non), checked)
    group[is_non] = "non"
    out["grouped_by"] = accuracy
    out["group_rule"] = method
    out["group_acc_pct"] = final
    out["group"] = group.astype(str)
    return out


def group_counts(groups: pd.DataFrame | pd.Series) -> dict[str, int]:
    """Number of trials per group, every group of :data:`ALL_GROUPS` present (0 if none)."""
    series = groups["group"] if isinstance(groups, pd.DataFrame) else groups
    counts = series.value_counts()
    return {g: int(counts.get(g, 0)) for g in ALL_GROUPS}


def _groups_file_columns(table: pd.DataFrame) -> list[str]:
    """:data:`GROUPS_CSV_COLUMNS` with ``table``'s setting columns after ``diverged``."""
    at = GROUPS_CSV_COLUMNS.index("diverged") + 1
    settings = hparam_columns(table.columns)
    return [*GROUPS_CSV_COLUMNS[:at], *settings, *GROUPS_CSV_COLUMNS[at:]]


def _stats_row(accs: np.ndarray) -> dict[str, float]:
    finite = accs[np.isfinite(accs)]
    if finite.size == 0:
        return {"min": np.nan, "median": np.nan, "max": np.nan}
    return {
        "min": round(float(finite.min()), 2),
        "median": round(float(np.median(finite)), 2),
        "max": round(float(finite.max()), 2),
    }


def _significant(value: float) -> float:
    return float(f"{value:.{SETTING_DIGITS}g}")


def _number_stats(values: pd.Series) -> list[float]:
    """min, median, max of a varied number over a group's trials (NaN when none)."""
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return [np.nan] * len(NUMBER_STATS)
    return [_significant(f(finite)) for f in (np.min, np.median, np.max)]


def _setting_kinds(joined: pd.DataFrame) -> dict[str, list | None]:
    """Each ``hp_`` column of the grouped trials -> None for a number, else the names
    it takes (sorted): the columns of Table 2 that describe it."""
    kinds = {}
    for column in hparam_columns(joined.columns):
        if column == SETTING_ID:
            continue
        numeric = pd.api.types.is_numeric_dtype(joined[column])
        kinds[column] = None if numeric else sorted(set(joined[column].dropna().astype(str)))
    return kinds


def _setting_stats(exp: pd.DataFrame, in_group: pd.Series, kinds: Mapping) -> dict:
    """Table 2's setting columns for one group of one experiment: the distinct settings
    its trials trained, per number min/median/max, per name the trials with each value.
    NA where the experiment does not vary the setting (another experiment does)."""
    row: dict[str, object] = {}
    if SETTING_ID in exp:
        varies = exp[SETTING_ID].notna().any()
        row[N_SETTINGS] = exp.loc[in_group, SETTING_ID].nunique() if varies else pd.NA
    for column, names in kinds.items():
        varies = exp[column].notna().any()
        values = exp.loc[in_group, column]
        if names is None:
            stats = _number_stats(values) if varies else [np.nan] * len(NUMBER_STATS)
            row.update({f"{column}_{s}": v for s, v in zip(NUMBER_STATS, stats, strict=True)})
        else:
            counts = values.dropna().astype(str).value_counts()
            row.update({f"{column}={n}": int(counts.get(n, 0)) if varies else pd.NA for n in names})
    return row


def table2(per_experiment: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Table 2: per (experiment, model, dataset, group) count, min, median, max (percent).

    Each input is a grouped table (:func:`assign_groups` / :func:`read_groups_csv`); a
    frame may hold several experiments. Statistics are over ``group_acc_pct`` (the final
    accuracy used for grouping), finite values only (diverged *non* trials count but have
    no accuracy), rounded to 2 decimals. Every group of :data:`ALL_GROUPS` gets a row,
    empty ones with count 0 and NaN statistics. Experiments keep their input order.

    Where the trials carry varied training settings (``setting_id``, ``hp_<name>``),
    columns follow :data:`TABLE2_COLUMNS`: ``n_settings`` (distinct settings the group's
    trials trained), ``hp_<name>_min``/``_median``/``_max`` per varied number (4
    significant digits) and ``hp_<name>=<value>`` (trials with that value) per varied
    name; NA in the rows of an experiment that does not vary it. Without such columns
    the table is exactly :data:`TABLE2_COLUMNS`.
    """
    frames = [f for f in per_experiment if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(TABLE2_COLUMNS))
    rows = []
    joined = pd.concat(frames, ignore_index=True)
    kinds = _setting_kinds(joined)
    for (experiment, model, dataset), exp in joined.groupby(
        ["experiment", "model", "dataset"], sort=False
    ):
        grouped_by = ",".join(sorted(set(exp["grouped_by"].astype(str))))
        rules = exp["group_rule"].astype(str) if "group_rule" in exp else pd.Series(["bands"])
        group_rule = ",".join(sorted(set(rules)))
        for group in ALL_GROUPS:
            in_group = exp["group"] == group
            accs = exp.loc[in_group, "group_acc_pct"].to_numpy(dtype=float)
            rows.append(
                {
                    "experiment": experiment,
                    "model": model,
                    "dataset": dataset,
                    "grouped_by": grouped_by,
                    "group_rule": group_rule,
                    "group": group,
                    "count": int(len(accs)),
                    **_stats_row(accs),
                    **_setting_stats(exp, in_group, kinds),
                }
            )
    table = pd.DataFrame(rows)
    counts = [c for c in table.columns if c == N_SETTINGS or "=" in c]
    return table.astype(dict.fromkeys(counts, "Int64"))  # NA where not varied, no 12.0


def _rules_of(df: pd.DataFrame) -> dict[str, str]:
    """Experiment -> group rule of a grouped table or Table 2 (``bands`` if unrecorded)."""
    if "group_rule" not in df:
        return dict.fromkeys(df["experiment"].astype(str), "bands")
    return dict(zip(df["experiment"].astype(str), df["group_rule"].astype(str), strict=True))


def describe_group_rules(rules: Mapping[str, str]) -> str:
    """One sentence naming the rule that made the groups, for tables and figure captions:
    ``{"dnn_digits": "relative", ...}`` -> ``"Groups: bands as fractions of ..."``."""
    kinds = list(dict.fromkeys(rules.values()))
    if not kinds:
        return ""
    if len(kinds) == 1:
        return f"Groups: {kinds[0]} = {RULE_DESCRIPTIONS.get(kinds[0], kinds[0])}."
    per_experiment = ", ".join(f"{e}: {r}" for e, r in rules.items())
    meanings = "; ".join(f"{k} = {RULE_DESCRIPTIONS.get(k, k)}" for k in kinds)
    return f"Groups ({per_experiment}): {meanings}."


def _fmt(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.2f}"


def table2_markdown(df: pd.DataFrame) -> str:
    """Table 2 in the paper's shape: rows model + group, per dataset n / min / median / max."""
    datasets = list(dict.fromkeys(df["dataset"]))
    header = ["model", "group"]
    for d in datasets:
        header += [f"{d} n", f"{d} min", f"{d} median", f"{d} max"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in dict.fromkeys(df["model"]):
        for group in ALL_GROUPS:
            cells = [str(model), group]
            for d in datasets:
                row = df[(df["model"] == model) & (df["dataset"] == d) & (df["group"] == group)]
                if row.empty:
                    cells += ["", "", "", ""]
                    continue
                r = row.iloc[0]
                cells += [str(int(r["count"])), _fmt(r["min"]), _fmt(r["median"]), _fmt(r["max"])]
            lines.append("| " + " | ".join(cells) + " |")
    kinds = ", ".join(
        f"{e}: {k}" for e, k in dict.fromkeys(zip(df["experiment"], df["grouped_by"], strict=True))
    )
    notes = [
        "",
        f"Final accuracy (%) per group, min / median / max over trials (accuracy used: {kinds}).",
        describe_group_rules(_rules_of(df)),
        "n = number of trials; '–' = no finite accuracy (empty group or diverged trials only).",
        "non = diverged or never above chance level; between = converged but in no band.",
    ]
    settings = _settings_markdown(df)
    return "\n".join(["# Table 2 — accuracy per group", "", *lines, *notes, *settings]) + "\n"


def _settings_layout(df: pd.DataFrame) -> dict[str, list[str]]:
    """Setting name -> its Table 2 columns (``hp_lr_min`` ... or ``hp_optimizer=adam`` ...),
    in the table's order; empty for experiments with fixed settings."""
    layout: dict[str, list[str]] = {}
    for column in df.columns:
        if not column.startswith(HPARAM_PREFIX):
            continue
        name, is_count, _ = column[len(HPARAM_PREFIX) :].partition("=")
        if not is_count:
            name = name.rsplit("_", 1)[0]  # hp_weight_decay_median -> weight_decay
        layout.setdefault(name, []).append(column)
    return layout


def _setting_cell(row: pd.Series, columns: Sequence[str]) -> str:
    """``median [min, max]`` of a number, ``adam 3, rmsprop 9`` (values with trials) of a
    name; '–' when the group has no value."""
    if "=" in columns[0]:
        counts = [(c.partition("=")[2], int(row[c])) for c in columns]
        return ", ".join(f"{name} {n}" for name, n in counts if n) or "–"
    lo, mid, hi = (row[c] for c in columns)
    if not np.isfinite(mid):
        return "–"
    return f"{mid:.3g} [{lo:.3g}, {hi:.3g}]"


def _settings_markdown(df: pd.DataFrame) -> list[str]:
    """Lines of Table 2's settings part, one table per experiment that varies its training
    (none for fixed settings, so their Table 2 stays as it was)."""
    layout = _settings_layout(df)
    if not layout:
        return []
    lines = [
        "",
        "## Training settings per group",
        "",
        "Experiments that vary their training: per group, the trials (n), the distinct",
        "settings they trained (settings; replicates share one), and each varied setting:",
        "median [min, max] over the group's trials for a number, trials per value for a name.",
    ]
    for experiment, exp in df.groupby("experiment", sort=False):
        varied = {
            name: columns for name, columns in layout.items() if exp[columns].notna().any(axis=None)
        }
        if not varied:
            continue
        header = ["group", "n", "settings", *varied]
        lines += ["", f"### {experiment}", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, r in exp.iterrows():
            n_settings = "" if pd.isna(r.get(N_SETTINGS, pd.NA)) else str(int(r[N_SETTINGS]))
            cells = [r["group"], str(int(r["count"])), n_settings]
            cells += [_setting_cell(r, columns) for columns in varied.values()]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_table2(df: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike) -> None:
    """Write Table 2 as CSV and as a markdown table; both atomically."""
    with atomic_output(csv_path) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_output(md_path) as tmp:
        tmp.write_text(table2_markdown(df), encoding="utf-8")


def write_groups_csv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write one experiment's grouped trials (columns :data:`GROUPS_CSV_COLUMNS`, and the
    varied training settings ``setting_id``, ``hp_<name>`` after ``diverged`` if any)."""
    missing = [c for c in GROUPS_CSV_COLUMNS if c not in table]
    if missing:
        raise ValueError(f"table lacks columns {missing}; pass the result of assign_groups()")
    with atomic_output(path) as tmp:
        table.loc[:, _groups_file_columns(table)].to_csv(tmp, index=False)


def read_groups_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a file written by :func:`write_groups_csv` (accuracies in percent)."""
    text_columns = ("experiment", "model", "dataset", "arch", "grouped_by", "group_rule", "group")
    pct_columns = [c for c in GROUPS_CSV_COLUMNS if c.endswith("_pct")]
    # a varied setting is empty where an architecture does not vary it: NaN, so that
    # numbers stay numbers (names are read as str)
    settings = hparam_columns(pd.read_csv(path, nrows=0).columns)
    df = pd.read_csv(
        path,
        dtype={c: str for c in text_columns},
        keep_default_na=False,
        na_values={
            **{c: ["", "nan", "NaN"] for c in pct_columns},
            **{c: [""] for c in settings},
        },
    )
    if (
        "group_rule" not in df and "grouped_by" in df
    ):  # written before the rule was recorded: bands only then
        df.insert(list(df.columns).index("grouped_by") + 1, "group_rule", "bands")
    missing = [c for c in GROUPS_CSV_COLUMNS if c not in df]
    if missing:
        raise ValueError(f"{path}: not a groups file, columns {missing} missing")
    df["trial_id"] = df["trial_id"].astype("int64")
    df["seed"] = df["seed"].astype("int64")
    df["diverged"] = df["diverged"].astype(str).str.lower().map({"true": True, "false": False})
    if df["diverged"].isna().any():
        raise ValueError(f"{path}: column 'diverged' must be True/False")
    df["diverged"] = df["diverged"].astype(bool)
    return nullable_setting_id(df)
