"""benchmarks/bench_settings.py runs and prints what it promises (tiny settings: no timing is
checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from weightzoo.bench import harness

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench_settings(monkeypatch):
    """The script as a module (a thin command line over weightzoo.bench)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_settings

    return bench_settings


def table_rows(out: str) -> list[list[str]]:
    """Cells of the first markdown table's body rows."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| net |"))
    body = []
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        body.append([c.strip() for c in line.strip("|").split("|")])
    return body


def test_quick_run_times_every_setting_on_its_own_optimizer_path(bench_settings, capsys):
    bench_settings.main(
        ["--quick", "--nets", "dnn-20", "--trials", "2", "--steps", "1", "--device", "cpu"]
        + ["--profile", "--profile-calls", "1", "--profile-min-share", "0"]
    )
    out = capsys.readouterr().out
    rows = table_rows(out)
    assert [(r[0], r[1].split()[0], r[2], r[3]) for r in rows] == [
        ("DNN 784-20-20-10", "(1)", "fused-block-aligned", "2"),
        ("DNN 784-20-20-10", "(2a)", "adam-per-trial", "2"),
        ("DNN 784-20-20-10", "(2)", "adam-per-trial", "2"),
        ("DNN 784-20-20-10", "(3)", "adam-per-trial", "2"),
        ("DNN 784-20-20-10", "(4)", "sgd_momentum-per-trial", "2"),
        ("DNN 784-20-20-10", "(5)", "rmsprop-per-trial", "2"),
    ]
    assert all(float(r[5].replace(",", "")) > 0 for r in rows)
    assert rows[0][6] == "1.00"  # the base of the ratios
    # a ratio line per setting but the base; the verdict only at 100 trials
    assert "- DNN 784-20-20-10 · (3) (2) + per-trial dropout ×2 / (1) = " in out
    assert "target ≥ 0.9×" not in out
    assert "- --quick: smoke test only" in out
    # the profile: a column per setting, each place named by its function and op
    assert "Profile of DNN 784-20-20-10 ×2" in out
    assert "| where | (1) | (2a) | (2) | (3) | (4) | (5) |" in out
    profile = out[out.index("Profile of") :]
    assert "| optim.py PerTrialOptimizer.step: aten::mul_ | 0.00 | " in profile  # not in (1)
    assert "| dropout.py TrialDropout._draw_uniforms: aten::uniform_ | 0.00 | 0.00 | 0.00 | " in profile
    assert "| backward: " in profile


def test_quick_run_of_the_small_cnn_with_dropout(bench_settings, capsys):
    bench_settings.main(
        ["--quick", "--nets", "smallcnn", "--settings", "lr-wd-dropout", "--trials", "2"]
        + ["--device", "cpu"]
    )
    rows = table_rows(capsys.readouterr().out)
    assert [(r[0], r[1].split()[0], r[3]) for r in rows] == [
        ("smallcnn c16", "(1)", "2"),
        ("smallcnn c16", "(3)", "2"),
    ]


def test_verdict_at_100_trials_is_each_settings_rate_over_the_shared_one(bench_settings):
    def timed(setting: str, seconds: list[float]):
        method = harness.Method(setting, 100, 10, 0.0, lambda: None)
        method.seconds = seconds
        net = bench_settings.NETS["dnn-20"]
        return bench_settings.Timed(net, bench_settings.SETTINGS[setting], method, "")

    # per round: 1.0/1.25 = 0.8, 1.0/1.0 = 1.0, 1.0/1.05 = 0.95 of (1)'s rate
    shared = timed("shared", [1.0, 1.0, 1.0])
    decay = timed("lr-wd", [1.25, 1.0, 1.05])
    (line,) = bench_settings.ratio_lines([shared, decay])
    assert line == (
        "- lr-wd ×100 / (1) = 0.95× (rounds 0.80–1.00); target ≥ 0.9×: met (2/3 rounds)"
    )


def test_options_default_to_the_documented_run(bench_settings):
    args = bench_settings.parse_args([])
    assert (args.trials, args.steps, args.smallcnn_steps, args.repeats) == ([10, 100], 20, 4, 3)
    assert args.settings == list(bench_settings.SETTINGS)
    args = bench_settings.parse_args(["--quick", "--settings", "sgd"])
    assert (args.steps, args.smallcnn_steps, args.repeats) == (2, 1, 1)
    assert args.settings == ["shared", "sgd"]  # the base of every ratio is always timed
    with pytest.raises(SystemExit):
        bench_settings.parse_args(["--trials", "0"])


def test_runs_as_a_script_over_the_package_harness(tmp_path):
    """As benchmarks/README.md runs it: the file as a script, from anywhere."""
    script = BENCHMARKS / "bench_settings.py"
    text = script.read_text()
    assert "sys.path" not in text and "from bench_" not in text
    out = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--settings" in out and "--quick" in out and "--profile" in out
