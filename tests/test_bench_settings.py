"""benchmarks/bench_settings.py runs and prints what it promises (tiny settings: no timing is
checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
    # the shared dropout rate stays on the fused path: only (1) and (1d) take it
    assert [(r[0], r[1].split()[0], r[2], r[3], r[6]) for r in rows] == [
        ("DNN 784-20-20-10", "(1)", "fused-block-aligned", "2", "(1)"),
        ("DNN 784-20-20-10", "(1d)", "fused-block-aligned", "2", "(1)"),
        ("DNN 784-20-20-10", "(2a)", "adam-per-trial", "2", "(1)"),
        ("DNN 784-20-20-10", "(2)", "adam-per-trial", "2", "(1)"),
        ("DNN 784-20-20-10", "(2i)", "adam-per-trial", "2", "(1)"),
        ("DNN 784-20-20-10", "(3)", "adam-per-trial", "2", "(1d)"),
        ("DNN 784-20-20-10", "(4)", "sgd_momentum-per-trial", "2", "(1)"),
        ("DNN 784-20-20-10", "(5)", "rmsprop-per-trial", "2", "(1)"),
    ]
    assert all(float(r[5].replace(",", "")) > 0 for r in rows)
    assert rows[0][7] == "1.00"  # the base of the ratios
    # a ratio line per setting but (1), over its base; (3) over (1) too; the verdict only
    # at 100 trials
    assert "- DNN 784-20-20-10 · (3) (2) + per-trial dropout ×2 / (1d) = " in out
    assert "  - over (1) too, with what dropout itself costs: DNN 784-20-20-10 · (3)" in out
    assert "(0.35) ×2 / (1) = " in out
    assert "target ≥ 0.9×" not in out
    assert "- --quick: smoke test only" in out
    assert "- denormal floats: kept" in out
    # the profile: a column per setting, each place named by its function and op
    assert "Profile of DNN 784-20-20-10 ×2" in out
    assert "| where | (1) | (1d) | (2a) | (2) | (2i) | (3) | (4) | (5) |" in out
    profile = out[out.index("Profile of") :]
    assert "| optim.py PerTrialOptimizer.step: aten::mul_ | 0.00 | 0.00 | " in profile
    draws = profile_row(profile, "dropout.py TrialDropout._draw_uniforms: aten::uniform_")
    assert [draws[i] for i in (0, 2, 3, 4, 6, 7)] == ["0.00"] * 6  # no dropout there
    assert "| backward: " in profile


def profile_row(profile: str, place: str) -> list[str]:
    """The cells of ``place``'s row of a profile table, after the place."""
    line = next(line for line in profile.splitlines() if line.startswith(f"| {place} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def test_quick_run_of_the_small_cnn_with_dropout(bench_settings, capsys):
    bench_settings.main(
        ["--quick", "--nets", "smallcnn", "--settings", "lr-wd-dropout", "--trials", "2"]
        + ["--device", "cpu"]
    )
    rows = table_rows(capsys.readouterr().out)
    # (3)'s base comes along, and (1) for the line over it
    assert [(r[0], r[1].split()[0], r[3], r[6]) for r in rows] == [
        ("smallcnn c16", "(1)", "2", "(1)"),
        ("smallcnn c16", "(1d)", "2", "(1)"),
        ("smallcnn c16", "(3)", "2", "(1d)"),
    ]


def test_flush_denormal_is_on_while_timing_and_off_after(bench_settings, capsys):
    bench_settings.main(
        ["--quick", "--nets", "dnn-20", "--settings", "lr-wd-fixed-init", "--trials", "2"]
        + ["--steps", "1", "--device", "cpu", "--flush-denormal"]
    )
    out = capsys.readouterr().out
    assert [r[1].split()[0] for r in table_rows(out)] == ["(1)", "(2i)"]
    assert (
        "- denormal floats: flushed to zero (--flush-denormal)" in out
        or "- denormal floats: kept, --flush-denormal is not supported on this CPU" in out
    )
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # a float32 denormal
    assert (tiny * 0.5).item() != 0.0, "denormals still flushed after the run"


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
    # (3) is judged over (1d), one shared dropout rate, and shown over (1) as well; (1d)
    # varies nothing per trial and gets no verdict
    shared_dropout = timed("shared-dropout", [1.25, 1.25, 1.25])
    per_trial_dropout = timed("lr-wd-dropout", [1.25, 1.5, 1.3])
    assert bench_settings.ratio_lines([shared, shared_dropout, per_trial_dropout]) == [
        "- shared-dropout ×100 / (1) = 0.80× (rounds 0.80–0.80); one setting for every "
        "trial, no verdict",
        "- lr-wd-dropout ×100 / (1d) = 0.96× (rounds 0.83–1.00); target ≥ 0.9×: met (2/3 rounds)",
        "  - over (1) too, with what dropout itself costs: lr-wd-dropout ×100 / (1) = 0.77× "
        "(rounds 0.67–0.80), no verdict",
    ]


def test_options_default_to_the_documented_run(bench_settings):
    args = bench_settings.parse_args([])
    assert (args.trials, args.steps, args.smallcnn_steps, args.repeats) == ([10, 100], 20, 4, 3)
    assert args.settings == list(bench_settings.SETTINGS)
    args = bench_settings.parse_args(["--quick", "--settings", "sgd"])
    assert (args.steps, args.smallcnn_steps, args.repeats) == (2, 1, 1)
    assert args.settings == ["shared", "sgd"]  # the base of every ratio is always timed
    assert not args.flush_denormal
    args = bench_settings.parse_args(["--settings", "lr-wd-dropout", "lr", "shared-dropout"])
    assert args.settings == ["shared", "shared-dropout", "lr-wd-dropout", "lr"]
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
    assert "--flush-denormal" in out
