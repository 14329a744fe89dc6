"""Accuracy groups (non / low / mid / high / between) and Table 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from weightzoo.analysis.group_rules import ALL_GROUPS, DEFAULT_RELATIVE, GROUPS
from weightzoo.analysis.groups import (
    GROUPS_CSV_COLUMNS,
    TABLE2_COLUMNS,
    assign_groups,
    describe_group_rules,
    group_counts,
    read_groups_csv,
    relative_edges,
    table2,
    validate_bands,
    write_groups_csv,
    write_table2,
)

BANDS = {"low": [30, 55], "mid": [80, 82], "high": [95, 100]}


def trials(
    final_test,
    max_test=None,
    final_train=None,
    max_train=None,
    diverged=None,
    experiment="dnn_mnist",
    dataset="mnist",
):
    """A trials table like ``Zoo.trials_table()`` (accuracies as float32 fractions)."""
    n = len(final_test)
    as_frac = lambda v, default: np.asarray(default if v is None else v, dtype=np.float32)  # noqa: E731
    final_test = as_frac(final_test, None)
    return pd.DataFrame(
        {
            "experiment": experiment,
            "model": "dnn",
            "dataset": dataset,
            "arch": "h5-5",
            "trial_id": np.arange(n),
            "seed": np.arange(n) + 100,
            "diverged": np.zeros(n, bool) if diverged is None else np.asarray(diverged),
            "diverged_epoch": -1,
            "final_train_loss": 0.1,
            "final_test_loss": 0.1,
            "final_train_acc": as_frac(final_train, final_test),
            "final_test_acc": final_test,
            "max_train_acc": as_frac(max_train, final_test),
            "max_test_acc": as_frac(max_test, final_test),
        }
    )


def groups_of(table, **kw):
    return list(assign_groups(table, BANDS, **kw)["group"])


def test_groups_constant():
    assert GROUPS == ("non", "low", "mid", "high")
    assert ALL_GROUPS == ("non", "low", "mid", "high", "between")


def test_band_boundaries_are_inclusive_even_for_float32_fractions():
    table = trials([0.30, 0.55, 0.80, 0.82, 0.95, 1.0])
    assert groups_of(table) == ["low", "low", "mid", "mid", "high", "high"]


def test_just_outside_bands_is_between():
    table = trials([0.2999, 0.5501, 0.7999, 0.8201, 0.9499, 0.60])
    assert groups_of(table) == ["between"] * 6


def test_non_when_diverged_even_with_good_accuracy():
    table = trials([0.97, 0.97], diverged=[True, False])
    assert groups_of(table) == ["non", "high"]


def test_non_when_never_left_chance_level():
    # best 12 % <= 10 + 2 -> non; best 12.5 % > 12 -> not non (then between: no band)
    table = trials([0.1135, 0.11], max_test=[0.12, 0.125])
    assert groups_of(table) == ["non", "between"]


def test_chance_level_can_be_the_majority_class_rate():
    table = trials([0.12], max_test=[0.13])
    assert groups_of(table) == ["between"]
    assert groups_of(table, chance_level=11.35) == ["non"]
    assert groups_of(table, chance_tolerance=3.0) == ["non"]


def test_non_finite_accuracies_are_non():
    table = trials([np.nan, 0.5], max_test=[-np.inf, 0.5])
    out = assign_groups(table, BANDS)
    assert list(out["group"]) == ["non", "low"]
    assert np.isnan(out["max_test_acc_pct"].iloc[0])


def test_train_or_test_accuracy_selects_columns():
    table = trials([0.40], final_train=[0.97], max_train=[0.97])
    assert groups_of(table, accuracy="test") == ["low"]
    out = assign_groups(table, BANDS, accuracy="train")
    assert list(out["group"]) == ["high"]
    assert out["grouped_by"].iloc[0] == "train"
    assert out["group_acc_pct"].iloc[0] == pytest.approx(97.0)
    with pytest.raises(ValueError, match="accuracy"):
        assign_groups(table, BANDS, accuracy="val")


def test_overlapping_bands_higher_group_wins():
    bands = {"low": [30, 60], "mid": [50, 90], "high": [85, 100]}
    table = trials([0.55, 0.87, 0.40])
    assert list(assign_groups(table, bands)["group"]) == ["mid", "high", "low"]


def test_bands_are_validated():
    with pytest.raises(ValueError, match="non"):
        validate_bands({"non": [0, 10]})
    with pytest.raises(ValueError, match="min <= max"):
        validate_bands({"low": [50, 30]})


def test_regrouping_a_groups_table_uses_percent_columns(tmp_path):
    first = assign_groups(trials([0.40, 0.96]), BANDS)
    write_groups_csv(first, tmp_path / "g.csv")
    again = assign_groups(read_groups_csv(tmp_path / "g.csv"), {"high": [35, 100]})
    assert list(again["group"]) == ["high", "high"]


def hand_table():
    """Nine trials: non x2 (one diverged), low x3, high x3, between x1, mid empty."""
    finals = [0.1135, np.nan, 0.30, 0.40, 0.50, 0.96, 0.98, 0.99, 0.70]
    maxes = [0.1135, -np.inf, 0.30, 0.40, 0.50, 0.96, 0.98, 0.99, 0.70]
    diverged = [False, True] + [False] * 7
    return assign_groups(trials(finals, max_test=maxes, diverged=diverged), BANDS)


def test_table2_counts_and_statistics():
    t2 = table2([hand_table()])
    assert list(t2["group"]) == list(ALL_GROUPS)
    row = t2.set_index("group")
    assert row.loc["non", "count"] == 2
    assert row.loc["non", "median"] == pytest.approx(11.35)  # diverged trial has no accuracy
    assert row.loc["low", ["count", "min", "median", "max"]].tolist() == pytest.approx(
        [3, 30.0, 40.0, 50.0]
    )
    assert row.loc["high", ["count", "min", "median", "max"]].tolist() == pytest.approx(
        [3, 96.0, 98.0, 99.0]
    )
    assert row.loc["between", "count"] == 1
    assert row.loc["mid", "count"] == 0
    assert np.isnan(row.loc["mid", ["min", "median", "max"]].astype(float)).all()
    assert set(t2["grouped_by"]) == {"test"}


def test_table2_several_experiments_keep_order():
    other = assign_groups(trials([0.5], experiment="dnn_cifar10", dataset="cifar10"), BANDS)
    t2 = table2([other, hand_table()])
    assert list(dict.fromkeys(t2["experiment"])) == ["dnn_cifar10", "dnn_mnist"]
    assert len(t2) == 2 * len(ALL_GROUPS)


def test_write_table2_csv_and_markdown_without_temp_files(tmp_path):
    t2 = table2([hand_table()])
    write_table2(t2, tmp_path / "t2.csv", tmp_path / "t2.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t2.csv", "t2.md"]
    back = pd.read_csv(tmp_path / "t2.csv")
    assert list(back["count"]) == list(t2["count"])
    md = (tmp_path / "t2.md").read_text()
    assert "| model | group | mnist n | mnist min | mnist median | mnist max |" in md
    assert "| dnn | mid | 0 | – | – | – |" in md
    assert "| dnn | high | 3 | 96.00 | 98.00 | 99.00 |" in md
    assert "test" in md


def test_groups_csv_round_trip(tmp_path):
    table = hand_table()
    path = tmp_path / "sub" / "groups.csv"
    write_groups_csv(table, path)
    assert [p.name for p in path.parent.iterdir()] == ["groups.csv"]
    back = read_groups_csv(path)
    assert tuple(back.columns) == GROUPS_CSV_COLUMNS
    assert list(back["group"]) == list(table["group"])
    assert back["diverged"].dtype == bool
    assert list(back["diverged"]) == list(table["diverged"])
    np.testing.assert_allclose(back["final_test_acc_pct"], table["final_test_acc_pct"])
    assert group_counts(back) == {"non": 2, "low": 3, "mid": 0, "high": 3, "between": 1}


def test_write_groups_csv_needs_grouped_table(tmp_path):
    with pytest.raises(ValueError, match="assign_groups"):
        write_groups_csv(trials([0.5]), tmp_path / "g.csv")


# ------------------------------------------------------------------ relative groups


def test_relative_groups_are_fractions_of_the_converged_range():
    # non (never left chance) must not become the worst trial: range is 20..100
    table = trials([0.20, 0.30, 0.50, 0.60, 0.80, 1.0, 0.11], max_test=[None] * 6 + [0.11])
    table["max_test_acc"] = table["max_test_acc"].fillna(table["final_test_acc"])
    out = assign_groups(table, None, method="relative")
    # positions 0, .125, .375, .5, .75, 1 against low [0, .4], mid [.45, .75], high [.8, 1]
    assert list(out["group"]) == ["low", "low", "low", "mid", "mid", "high", "non"]
    assert set(out["group_rule"]) == {"relative"}


def test_relative_groups_exist_where_fixed_bands_find_none():
    """A zoo like the Fashion-MNIST CNNs (all between 83 and 91 %): the paper's bands put
    every trial in low or between; relative groups fill low, mid and high."""
    accs = np.linspace(0.834, 0.905, 50)
    paper_bands = {"low": [0, 90], "mid": [96, 98], "high": [99.5, 100]}
    fixed = group_counts(assign_groups(trials(accs), paper_bands))
    assert fixed["mid"] == fixed["high"] == 0
    counts = group_counts(assign_groups(trials(accs), paper_bands, method="relative"))
    assert counts["low"] > 0 and counts["mid"] > 0 and counts["high"] > 0
    assert sum(counts.values()) == 50


def test_relative_ends_are_exact_for_float32_accuracies():
    accs = np.float32([0.9499999881, 0.33, 0.6666])
    out = assign_groups(trials(accs), None, method="relative", relative={"high": [1, 1]})
    assert list(out["group"]) == ["high", "between", "between"]
    out = assign_groups(trials(accs), None, method="relative", relative={"low": [0, 0]})
    assert list(out["group"]) == ["between", "low", "between"]


def test_relative_without_a_range_is_between():
    out = assign_groups(
        trials([0.5, 0.5, 0.11], max_test=[0.5, 0.5, 0.11]), None, method="relative"
    )
    assert list(out["group"]) == ["between", "between", "non"]


def test_relative_bands_are_validated_and_bands_needed_by_bands():
    with pytest.raises(ValueError, match=r"must lie in \[0.0, 1.0\]"):
        assign_groups(trials([0.5]), None, method="relative", relative={"low": [0, 40]})
    with pytest.raises(ValueError, match="method"):
        assign_groups(trials([0.5]), BANDS, method="quantiles")
    with pytest.raises(ValueError, match="needs bands"):
        assign_groups(trials([0.5]), None)


def test_relative_edges_in_percent_for_the_log():
    acc = np.array([20.0, 60.0, 100.0, 10.0])
    edges = relative_edges(acc, np.array([True, True, True, False]), DEFAULT_RELATIVE)
    assert edges == {"low": (20.0, 52.0), "mid": (56.0, 80.0), "high": (84.0, 100.0)}


def test_group_rule_is_recorded_in_csv_and_table2(tmp_path):
    relative = assign_groups(trials([0.3, 0.6, 0.9], experiment="a"), None, method="relative")
    bands = assign_groups(trials([0.3, 0.6, 0.9], experiment="b"), BANDS)
    write_groups_csv(relative, tmp_path / "a.csv")
    back = read_groups_csv(tmp_path / "a.csv")
    assert list(back["group_rule"]) == ["relative"] * 3
    t2 = table2([back, bands])
    assert dict(zip(t2["experiment"], t2["group_rule"], strict=True)) == {
        "a": "relative",
        "b": "bands",
    }
    write_table2(t2, tmp_path / "t2.csv", tmp_path / "t2.md")
    md = (tmp_path / "t2.md").read_text()
    assert "Groups (a: relative, b: bands): relative = bands as fractions" in md
    assert "bands = fixed accuracy bands" in md


def test_groups_csv_without_group_rule_reads_as_bands(tmp_path):
    write_groups_csv(hand_table(), tmp_path / "g.csv")
    old = pd.read_csv(tmp_path / "g.csv").drop(columns="group_rule")
    old.to_csv(tmp_path / "old.csv", index=False)
    back = read_groups_csv(tmp_path / "old.csv")
    assert tuple(back.columns) == GROUPS_CSV_COLUMNS
    assert set(back["group_rule"]) == {"bands"}


def test_describe_group_rules():
    assert describe_group_rules({"a": "bands", "b": "bands"}).startswith("Groups: bands = fixed")
    assert "a: relative, b: bands" in describe_group_rules({"a": "relative", "b": "bands"})
    assert describe_group_rules({}) == ""


def test_figure_captions_state_the_group_rule():
    from matplotlib.figure import Figure

    from weightzoo.figures.common import set_titles

    fig = Figure()
    set_titles(fig, "Fig. 2", "One dot per trial.", group_rules={"dnn_digits": "relative"})
    caption = fig._supxlabel.get_text().replace("\n", " ")
    assert caption.startswith("One dot per trial. Groups: relative = bands as fractions")


def test_figures_name_the_rules_of_their_features_tables():
    """A figure drawn from features tables names the rule of each table's groups."""
    from matplotlib.figure import Figure

    from weightzoo.analysis.figuredata.tables import group_rules
    from weightzoo.figures import common

    tables = [
        pd.DataFrame({"experiment": ["b", "b"], "group_rule": ["relative"] * 2}),
        pd.DataFrame({"experiment": ["a"]}),  # written before the rule was recorded
    ]
    rules = group_rules(tables)
    assert rules == {"b": "relative", "a": "bands"}
    fig = Figure()
    common.set_titles(fig, "Fig. 5", "Caption.", rules)
    assert "Groups (b: relative, a: bands)" in fig._supxlabel.get_text().replace("\n", " ")


# ------------------------------------------------------------- varied training settings

# Table 2 of hand_table() as weightzoo wrote it before settings could vary: a zoo with
# fixed settings must keep getting exactly these bytes
FIXED_TABLE2_CSV = (
    "experiment,model,dataset,grouped_by,group_rule,group,count,min,median,max\n"
    "dnn_mnist,dnn,mnist,test,bands,non,2,11.35,11.35,11.35\n"
    "dnn_mnist,dnn,mnist,test,bands,low,3,30.0,40.0,50.0\n"
    "dnn_mnist,dnn,mnist,test,bands,mid,0,,,\n"
    "dnn_mnist,dnn,mnist,test,bands,high,3,96.0,98.0,99.0\n"
    "dnn_mnist,dnn,mnist,test,bands,between,1,70.0,70.0,70.0\n"
)
FIXED_TABLE2_MD = """# Table 2 — accuracy per group

| model | group | mnist n | mnist min | mnist median | mnist max |
|---|---|---|---|---|---|
| dnn | non | 2 | 11.35 | 11.35 | 11.35 |
| dnn | low | 3 | 30.00 | 40.00 | 50.00 |
| dnn | mid | 0 | – | – | – |
| dnn | high | 3 | 96.00 | 98.00 | 99.00 |
| dnn | between | 1 | 70.00 | 70.00 | 70.00 |

Final accuracy (%) per group, min / median / max over trials (accuracy used: dnn_mnist: test).
Groups: bands = fixed accuracy bands (config `bands`, inclusive [min, max] %).
n = number of trials; '–' = no finite accuracy (empty group or diverged trials only).
non = diverged or never above chance level; between = converged but in no band.
"""


def varied_table(experiment="dnn_mnist"):
    """hand_table()'s nine trials trained with varied settings, known per group:
    non (0, 1): lr 1.0 and 0.5, sgd_momentum, one setting (id 0) replicated;
    low (2, 3, 4): lr 1e-3, 2e-3, 4e-3 -> median 2e-3, optimizers adam, rmsprop, adam;
    high (5, 6, 7): lr 1e-3, settings 3, 3, 4; between (8): rmsprop."""
    table = hand_table().assign(experiment=experiment)
    at = list(table.columns).index("diverged") + 1
    settings = {
        "setting_id": [0, 0, 1, 2, 2, 3, 3, 4, 5],
        "hp_lr": [1.0, 0.5, 1e-3, 2e-3, 4e-3, 1e-3, 1e-3, 1e-3, 0.1],
        "hp_optimizer": ["sgd_momentum"] * 2
        + ["adam", "rmsprop", "adam"]
        + ["adam"] * 3
        + ["rmsprop"],
    }
    for offset, (name, values) in enumerate(settings.items()):
        table.insert(at + offset, name, values)
    return table


def test_the_groups_file_carries_the_settings_after_diverged(tmp_path):
    write_groups_csv(varied_table(), tmp_path / "g.csv")
    header = (tmp_path / "g.csv").read_text().splitlines()[0].split(",")
    at = header.index("diverged") + 1
    assert header[at : at + 3] == ["setting_id", "hp_lr", "hp_optimizer"]
    back = read_groups_csv(tmp_path / "g.csv")
    assert back["setting_id"].dtype == np.int64 and back["hp_lr"].dtype == np.float64
    assert pd.api.types.is_string_dtype(back["hp_optimizer"])
    assert back["hp_optimizer"].tolist() == varied_table()["hp_optimizer"].tolist()
    mixed = varied_table()
    mixed.loc[8, ["setting_id", "hp_lr", "hp_optimizer"]] = [np.nan, np.nan, None]
    write_groups_csv(mixed, tmp_path / "mixed.csv")
    back = read_groups_csv(tmp_path / "mixed.csv")
    assert back["setting_id"].dtype == "Int64"  # ids stay integers beside the missing one
    assert back["setting_id"].isna().tolist() == [False] * 8 + [True]
    assert back["hp_lr"].dtype == np.float64 and back["hp_optimizer"].isna().sum() == 1


def test_table2_states_each_groups_settings():
    t2 = table2([varied_table()]).set_index("group")
    lr = ["hp_lr_min", "hp_lr_median", "hp_lr_max"]
    adam, rmsprop, sgd = (f"hp_optimizer={o}" for o in ("adam", "rmsprop", "sgd_momentum"))
    assert list(t2.columns[-7:]) == ["n_settings", *lr, adam, rmsprop, sgd]
    assert t2.loc["non", ["n_settings", sgd, adam]].tolist() == [1, 2, 0]  # replicates: one
    assert t2.loc["non", lr].tolist() == [0.5, 0.75, 1.0]
    assert t2.loc["low", lr].tolist() == [1e-3, 2e-3, 4e-3]
    assert t2.loc["low", ["n_settings", adam, rmsprop]].tolist() == [2, 2, 1]
    assert t2.loc["high", ["n_settings", adam]].tolist() == [2, 3]
    assert t2.loc["mid", ["n_settings", adam]].tolist() == [0, 0]  # an empty group
    assert np.isnan(t2.loc["mid", "hp_lr_median"])
    assert t2["n_settings"].dtype == "Int64" and t2[adam].dtype == "Int64"
    # the settings only add columns: the accuracy part is Table 2 as without them
    plain = table2([hand_table()])
    pd.testing.assert_frame_equal(t2.reset_index()[plain.columns], plain)


def test_table2_markdown_shows_the_settings_of_the_experiments_that_vary_them(tmp_path):
    fixed = hand_table().assign(experiment="dnn_cifar10", dataset="cifar10")
    t2 = table2([fixed, varied_table()])
    assert t2.loc[t2["experiment"] == "dnn_cifar10", "n_settings"].isna().all()
    assert t2.loc[t2["experiment"] == "dnn_cifar10", "hp_optimizer=adam"].isna().all()
    write_table2(t2, tmp_path / "t2.csv", tmp_path / "t2.md")
    md = (tmp_path / "t2.md").read_text()
    assert md.startswith("# Table 2 — accuracy per group")
    settings = md.split("## Training settings per group", 1)[1]
    assert "### dnn_mnist" in settings and "dnn_cifar10" not in settings
    assert "| group | n | settings | lr | optimizer |" in settings
    assert "| non | 2 | 1 | 0.75 [0.5, 1] | sgd_momentum 2 |" in settings
    assert "| low | 3 | 2 | 0.002 [0.001, 0.004] | adam 2, rmsprop 1 |" in settings
    assert "| mid | 0 | 0 | – | – |" in settings
    csv = pd.read_csv(tmp_path / "t2.csv")
    assert csv.loc[csv["experiment"] == "dnn_mnist", "hp_optimizer=adam"].tolist() == [
        0,
        2,
        0,
        3,
        0,
    ]


def test_table2_of_fixed_settings_is_byte_for_byte_as_before(tmp_path):
    t2 = table2([hand_table()])
    assert tuple(t2.columns) == TABLE2_COLUMNS
    write_table2(t2, tmp_path / "t2.csv", tmp_path / "t2.md")
    assert (tmp_path / "t2.csv").read_text() == FIXED_TABLE2_CSV
    assert (tmp_path / "t2.md").read_text() == FIXED_TABLE2_MD
    write_groups_csv(hand_table(), tmp_path / "g.csv")
    assert (tmp_path / "g.csv").read_text().splitlines()[0] == ",".join(GROUPS_CSV_COLUMNS)


def test_the_report_captions_of_table2_render():
    """The report shows Table 2 with table2.rst, or table2_settings.rst when the config
    varies settings (workflow/rules/analysis.smk): both valid reST, the second explaining
    the settings columns after the first's text."""
    from docutils.core import publish_parts

    report = Path(__file__).resolve().parents[1] / "workflow" / "report"
    plain = (report / "table2.rst").read_text()
    settings = (report / "table2_settings.rst").read_text()
    assert settings.startswith(plain)
    for text in (plain, settings):
        html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2})
        assert "Table 2 of the paper" in html["body"]
    for column in ("n_settings", "hp_&lt;name&gt;_median", "hp_&lt;name&gt;=&lt;value&gt;"):
        assert column in publish_parts(settings, writer="html")["body"]
