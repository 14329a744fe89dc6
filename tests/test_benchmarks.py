"""The benchmark scripts run and print what they promise (tiny settings: no timing is checked)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from weightzoo.bench import harness

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    """The scripts as modules (thin command lines over weightzoo.bench)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_dnn
    import bench_models

    return bench_dnn, bench_models


def table_rows(out: str) -> list[list[str]]:
    """Cells of the markdown table's body rows."""
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[1:]]


def test_bench_models_prints_a_row_per_method(bench, capsys, tmp_path):
    _, bench_models = bench
    tiny = ["--cnn-channels", "2", "--vit-d-model", "8", "--vit-nhead", "2"]
    tiny += ["--vit-patch", "14", "--vit-dim-feedforward", "16"]
    csv_path = tmp_path / "models.csv"
    bench_models.main(
        [*tiny, "--trials", "1", "2", "--steps", "2", "--repeats", "1"]
        + ["--matmul-seconds", "0.01", "--device", "cpu", "--csv", str(csv_path), "--profile"]
    )
    out = capsys.readouterr().out
    profiled = [line for line in out.splitlines() if line.startswith("- profile of ")]
    assert [line.split(" (self CPU")[0] for line in profiled] == [
        "- profile of CNN c2 · (b) in-memory tensors ×1",
        "- profile of CNN c2 · (c) batched trainer, loop ×2",
        "- profile of CNN c2 · (c) batched trainer, grouped ×2",
        "- profile of ViT d8-h2-p14-f16 · (b) in-memory tensors ×1",
        "- profile of ViT d8-h2-p14-f16 · (c) batched trainer ×2",
    ]
    assert "conv (oneDNN forward and backward)" in profiled[0] and "Adam step" in profiled[0]
    assert "| method | trials | trial-steps/s (median) | × (b) |" in out
    rows = table_rows(out)
    expected = [
        ("CNN c2 · (b) in-memory tensors", "1"),
        ("CNN c2 · (c) batched trainer, loop", "1"),
        ("CNN c2 · (c) batched trainer, loop", "2"),
        ("CNN c2 · (c) batched trainer, grouped", "1"),
        ("CNN c2 · (c) batched trainer, grouped", "2"),
        ("ViT d8-h2-p14-f16 · (b) in-memory tensors", "1"),
        ("ViT d8-h2-p14-f16 · (c) batched trainer", "1"),
        ("ViT d8-h2-p14-f16 · (c) batched trainer", "2"),
        ("matmul 1024³ fp32", "–"),
    ]
    assert [(r[0], r[1]) for r in rows] == expected
    assert [r[3] for r in rows if "(b)" in r[0]] == ["1.0", "1.0"]  # each model's own base
    with open(csv_path, newline="") as fh:
        records = list(csv.DictReader(fh))
    assert [(r["method"], r["trials"] or "–") for r in records] == expected
    assert all(float(r["trial_steps_per_s"]) > 0 for r in records[:-1])
    assert "x_b" in records[0]


def test_flop_counter_matches_the_dnn_formula(bench):
    """bench_models counts FLOP with torch's counter; on the DNN it gives bench_dnn's count."""
    bench_dnn, bench_models = bench
    from weightzoo.train.models import get_family
    from weightzoo.train.trainer import TensorData

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(bench_dnn.BATCH, *bench_dnn.IMAGE_SHAPE), dtype=np.uint8)
    y = rng.integers(0, 10, size=bench_dnn.BATCH)
    data = TensorData.from_arrays(x, y, x, y, pixel_max=255)
    counted = bench_models.flop_per_trial_step(get_family("dnn"), bench_dnn.ARCH, data)
    assert counted == bench_dnn.flop_per_trial_step(bench_dnn.layer_sizes(), bench_dnn.BATCH)


def test_bench_models_refuses_a_vit_that_does_not_fit(bench):
    _, bench_models = bench
    with pytest.raises(SystemExit):
        bench_models.parse_args(["--vit-patch", "5"])  # 5 does not tile 28x28


def test_bench_dnn_options_keep_their_defaults(bench):
    bench_dnn, _ = bench
    args = bench_dnn.parse_args([])
    assert (args.steps, args.steps_a, args.repeats, args.matmul_seconds) == (100, 100, 3, 0.5)
    args = bench_dnn.parse_args(["--quick", "--steps", "7"])
    assert (args.steps, args.steps_a, args.repeats, args.matmul_seconds) == (7, 7, 1, 0.05)
    with pytest.raises(SystemExit):
        bench_dnn.parse_args(["--trials", "0"])


def test_bench_dnn_times_the_dynamics_beside_plain_training(bench, capsys):
    bench_dnn, _ = bench
    bench_dnn.main(
        ["--quick", "--steps", "2", "--steps-a", "1", "--trials", "2", "--repeats", "1"]
        + ["--matmul-seconds", "0.01", "--data", "synthetic", "--device", "cpu"]
        + ["--dynamics", "both"]
    )
    out = capsys.readouterr().out
    methods = [(r[0], r[1]) for r in table_rows(out)]
    assert methods[2:4] == [
        ("(c) batched trainer", "2"),
        ("(c) batched trainer + dynamics", "2"),
    ]
    assert "- dynamics (c) ×2: " in out and "of an MNIST epoch (600 steps)" in out
    assert bench_dnn.parse_args([]).dynamics == "off"


def timed(name: str, trials: int, seconds: list[float]):
    """A method that ran 10 steps in each of the given rounds."""
    m = harness.Method(name, trials, 10, 1.0, lambda: None)
    m.seconds = list(seconds)
    return m


def test_target_verdicts_use_the_median_and_show_every_rounds_spread(bench):
    _, bench_models = bench
    base = timed("CNN c4 · (b) in-memory tensors", 1, [0.1, 0.1, 0.1])
    # per round: 100·10/s over (b)'s 100 trial-steps/s = 1.25, 2.0, 1.6
    batched = timed("CNN c4 · (c) batched trainer, loop", 100, [8.0, 5.0, 6.25])
    assert harness.round_ratios(batched, base) == pytest.approx([1.25, 2.0, 1.6])
    verdict = harness.ratio_verdict(harness.round_ratios(batched, base), 1.5)
    assert verdict == "1.60× (rounds 1.25–2.00); target ≥ 1.5×: met (2/3 rounds)"
    assert "NOT met (1/3 rounds)" in harness.ratio_verdict([1.25, 2.0, 1.6], 1.8)
    model = bench_models.ModelMethods("cnn", "CNN c4", 1.0, [base, batched])
    lines = bench_models.target_lines([model], torch.device("cpu"))
    assert lines == [f"- CNN c4 · (c) batched trainer, loop ×100 / (b) = {verdict}"]
    assert bench_models.target_lines([model], torch.device("meta")) == []


def test_bench_dnn_times_the_matmuls_alone_as_the_bound_of_a_step(bench, capsys):
    bench_dnn, _ = bench
    bench_dnn.main(
        ["--quick", "--steps", "2", "--steps-a", "1", "--trials", "100", "--repeats", "1"]
        + ["--matmul-seconds", "0.01", "--data", "synthetic", "--device", "cpu"]
        + ["--matmul-bound"]
    )
    out = capsys.readouterr().out
    methods = [(r[0], r[1]) for r in table_rows(out)]
    assert ("(e) (c)'s matmuls alone", "100") in methods
    assert "- (c) ×100 / (e) ×100 (its matmuls alone) = " in out
    assert "; (e) ×100 / (d) ×100 = " in out
    assert "(rounds " in out  # the recipe target's verdict shows its spread


def test_bench_models_compile_adds_a_compiled_row_and_leaves_the_family_eager(bench, capsys):
    _, bench_models = bench
    from weightzoo.train.models import get_family

    tiny = ["--models", "vit", "--vit-d-model", "8", "--vit-nhead", "2", "--vit-patch", "14"]
    tiny += ["--vit-dim-feedforward", "16", "--trials", "1", "2", "--compile"]
    bench_models.main(
        [*tiny, "--steps", "2", "--repeats", "1", "--matmul-seconds", "0.01", "--device", "cpu"]
    )
    rows = [(r[0], r[1]) for r in table_rows(capsys.readouterr().out)]
    compiled = "ViT d8-h2-p14-f16 · (c) batched trainer, forward torch.compile'd"
    assert rows[-2:] == [(compiled, "2"), ("matmul 1024³ fp32", "–")]  # largest --trials only
    vit = get_family("vit")
    assert vit.forward.__func__ is type(vit).forward  # the registered family is not compiled


def test_scripts_import_the_harness_as_a_package_module():
    """No sys.path games: each script is a thin command line over weightzoo.bench."""
    for script in ("bench_dnn.py", "bench_models.py"):
        text = (BENCHMARKS / script).read_text()
        assert "sys.path" not in text and "from bench_" not in text, script
        assert "from weightzoo.bench." in text, script


def test_documented_command_runs_as_a_script(tmp_path):
    """As benchmarks/README.md runs it: the file as a script, from the repository."""
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_models.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--cnn-strategies" in out and "--quick" in out
