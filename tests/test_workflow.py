"""The Snakemake workflow end to end on a tiny digits config, in a copy of the repo.

Each test works on its own copy (Snakefile, workflow/, src/, config/, envs/) so touching
package code to test reruns never touches the real checkout.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml
from test_config import reordered  # the config tests' key re-ordering

from weightzoo.analysis.features import read_features
from weightzoo.figures.registry import PAPER_FIGURES, figures_for

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
pytestmark = pytest.mark.slow

# the tiny config a person can also run by hand (its run_dir is dropped: tests look for
# results/ in the copy itself)
TINY = {
    k: v
    for k, v in yaml.safe_load((REPO / "config" / "test.yaml").read_text()).items()
    if k != "run_dir"
}
# every figure the tiny config's models draw (the paper's three: no Small CNN figures)
ALL_FIGURES = list(figures_for(e["model"] for e in TINY["experiments"].values()))


def copy_repo(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "src", "config", "envs"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def write_config(root: Path, config: dict, name="tiny.yaml") -> Path:
    path = root / "config" / name
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake(root: Path, *args, timeout=600, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ""}
    cmd = ["timeout", "-k", "10", str(timeout), str(SNAKEMAKE), "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@contextlib.contextmanager
def edited(path: Path):
    """Append a comment to ``path``; restore its text and mtime afterwards."""
    text, stat = path.read_text(), path.stat()
    path.write_text(text + "\n# edited\n")
    try:
        yield
    finally:
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def planned_jobs(root: Path, *args) -> dict[str, list[str]]:
    """Dry run: {rule: [outputs]} of the jobs snakemake would run."""
    out = snakemake(root, "-n", *args).stdout
    jobs: dict[str, list[str]] = {}
    for rule, output in re.findall(
        r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    output: (.*)$", out, flags=re.M
    ):
        jobs.setdefault(rule, []).append(output)
    return jobs


def assert_all_figures_and_table2(root: Path) -> None:
    for name in ALL_FIGURES:
        for ext in ("pdf", "png"):
            assert (root / "results" / "figures" / f"{name}.{ext}").stat().st_size > 1000, name
    for ext in ("csv", "md"):
        assert (root / "results" / "tables" / f"table2.{ext}").stat().st_size > 100


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the repo where the tiny config has been run to completion."""
    root = copy_repo(tmp_path_factory.mktemp("wf"))
    config = write_config(root, TINY)
    snakemake(root, "--configfile=" + str(config), "all")
    return root, config


def test_all_builds_table_figures_and_zoo(built):
    root, _ = built
    assert len(PAPER_FIGURES) == 13 and len(ALL_FIGURES) == 13 + 3  # + RWC per model
    assert_all_figures_and_table2(root)
    table = (root / "results" / "tables" / "table2.md").read_text()
    for model in ("dnn", "cnn", "vit"):
        assert f"| {model} | high |" in table
    with h5py.File(root / "results" / "zoo" / "dnn_digits.h5") as f:
        assert f["archs/h6-6/trials/trial_id"][()].tolist() == [0, 1, 2, 3]
        # chunks merged: checkpoints and dynamics of all 4 trials
        assert f["archs/h6-6/weights/epoch_1/fc1.weight"].shape == (4, 6, 64)
        assert f["archs/h6-6/dynamics/fc3.weight/rwc"].shape == (4, 2)
    log = root / "results" / "logs" / "train" / "dnn_digits" / "h6-6" / "t00000-00002.log"
    assert "training 2 trials" in log.read_text()
    bench = root / "results" / "benchmarks" / "train" / "dnn_digits" / "h6-6" / "t00000-00002.tsv"
    assert bench.read_text().startswith("s\t")
    features = read_features(root / "results" / "features" / "dnn_digits.parquet")
    # trials x layers (FC1-FC3) x states (final, initial, epoch_1: config/test.yaml's checkpoint)
    assert len(features) == 8 * 3 * 3
    assert set(features["state"]) == {"final", "initial", "epoch_1"}
    assert (root / "results" / "benchmarks" / "features" / "vit_digits.tsv").exists()


def report_entries() -> list[str]:
    """Every output the HTML report must hold for the tiny config."""
    experiments = list(TINY["experiments"])
    return [
        *(f"results/figures/{name}.png" for name in ALL_FIGURES),
        "results/tables/table2.csv",
        *(f"results/predict/{e}.csv" for e in experiments),
        *(f"results/predict/{e}.png" for e in experiments),
        *(f"results/predict/{e}.early.csv" for e in experiments),
        *(f"results/predict/{e}.early.png" for e in experiments),
        "results/claims/claims.csv",
        "results/claims/claims.png",
        *(f"results/reconstruct/{e}.parquet" for e in experiments),
        "results/reconstruct/reconstruct.png",
    ]


def test_report_holds_every_figure_and_table(built):
    root, config = built
    snakemake(root, "--configfile=" + str(config), "--report", "report.html")
    html = (root / "report.html").read_text()
    missing = [path for path in report_entries() if Path(path).name not in html]
    assert not missing, f"not in the report: {missing}"
    assert "Fig. 5 of the paper" in html  # a figure's caption, rendered from its reST
    assert "Table 2 of the paper" in html


def test_nothing_to_do_after_a_full_run(built):
    root, config = built
    assert planned_jobs(root, "--configfile=" + str(config)) == {}


def test_reordered_config_keys_rerun_nothing(built):
    """Rule params compare by repr: only a changed value may rerun a job, never the order
    of keys (``built`` ran the config as yaml.safe_dump writes it, keys sorted)."""
    root, _ = built
    for name, config in [("file-order.yaml", TINY), ("reversed.yaml", reordered(TINY))]:
        path = root / "config" / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        assert planned_jobs(root, "--configfile=" + str(path)) == {}, name


def test_editing_one_figure_module_redraws_only_its_figures(built):
    """fig05_weight_kde.py draws the paper's Figs 5, 6 and 7 (DNN, CNN, ViT): only those."""
    root, config = built
    with edited(root / "src" / "weightzoo" / "figures" / "fig05_weight_kde.py"):
        jobs = planned_jobs(root, "--configfile=" + str(config))
    assert set(jobs) == {"figure"}
    assert sorted(jobs["figure"]) == [
        f"results/figures/{name}.pdf, results/figures/{name}.png"
        for name in ("fig05_weight_kde_dnn", "fig06_weight_kde_cnn", "fig07_weight_kde_vit")
    ]


@pytest.mark.parametrize("module", ["train/trainer.py", "train/dynamics.py", "train/settings.py"])
def test_editing_trainer_code_retrains(built, module):
    root, config = built
    with edited(root / "src" / "weightzoo" / module):
        jobs = planned_jobs(root, "--configfile=" + str(config))
    assert len(jobs["train"]) == 4 + 2 + 1  # DNN chunks, CNN chunks, ViT chunk


def test_adding_trials_trains_only_the_new_ones(built):
    root, _ = built
    more = {
        **TINY,
        "experiments": {"dnn_digits": {**TINY["experiments"]["dnn_digits"], "trials": 12}},
    }
    config = write_config(root, more, "more.yaml")
    jobs = planned_jobs(root, "--configfile=" + str(config), "results/zoo/dnn_digits.h5")
    assert sorted(jobs["train"]) == [
        "results/train/dnn_digits/h16-16/t00004-00006.h5",
        "results/train/dnn_digits/h6-6/t00004-00006.h5",
    ]


def test_one_figure_target_builds_only_what_it_needs(tmp_path):
    root = copy_repo(tmp_path)
    config = write_config(root, TINY)
    jobs = planned_jobs(
        root, "--configfile=" + str(config), "results/figures/fig02_weight_stats_dnn.pdf"
    )
    assert set(jobs) == {
        "prepare_data",
        "train",
        "merge_zoo",
        "assign_groups",
        "features",  # Fig. 2 draws from the features table
        "figure",
    }
    assert jobs["features"] == ["results/features/dnn_digits.parquet"]
    assert len(jobs["figure"]) == 1 and "fig02_weight_stats_dnn" in jobs["figure"][0]


def test_one_vit_figure_target_trains_only_the_vits(tmp_path):
    root = copy_repo(tmp_path)
    config = write_config(root, TINY)
    jobs = planned_jobs(
        root, "--configfile=" + str(config), "results/figures/fig07_weight_kde_vit.pdf"
    )
    assert jobs["train"] == ["results/train/vit_digits/d8-h2-p4-f8/t00000-00002.h5"]
    assert jobs["merge_zoo"] == ["results/zoo/vit_digits.h5"]
    assert len(jobs["figure"]) == 1 and "fig07_weight_kde_vit" in jobs["figure"][0]
    assert "table2" not in jobs


def test_the_reconstruction_figure_plans_one_reconstruct_job_per_experiment(tmp_path):
    root = copy_repo(tmp_path)
    config = write_config(root, TINY)
    jobs = planned_jobs(root, "--configfile=" + str(config), "results/reconstruct/reconstruct.pdf")
    assert sorted(jobs["reconstruct"]) == sorted(
        f"results/reconstruct/{e}.parquet" for e in TINY["experiments"]
    )
    assert len(jobs["reconstruct_figure"]) == 1 and "features" not in jobs


# The demo config itself, exactly as `make demo` runs it: tests/test_documented_commands.py.


def dnn_only(run_dir: str, trials: int) -> dict:
    """A one-experiment DNN config with its own run directory (one epoch: fast)."""
    dnn = {**TINY["experiments"]["dnn_digits"], "trials": trials}
    return {
        **TINY,
        "run_dir": run_dir,
        "training": {**TINY["training"], "epochs": 1},
        "experiments": {"dnn_digits": dnn},
    }


def test_two_configs_keep_their_own_results(tmp_path):
    """Two configs run one after the other in one checkout: each writes under its own
    run_dir, neither touches the other's files, and the first is still up to date."""
    root = copy_repo(tmp_path)
    first = write_config(root, dnn_only("runs/first", trials=4), "first.yaml")
    second = write_config(root, dnn_only("runs/second", trials=6), "second.yaml")
    target = "results/tables/table2.md"  # relative to each config's run directory
    snakemake(root, "--configfile=" + str(first), target)
    first_files = {p: p.stat().st_mtime_ns for p in (root / "runs" / "first").rglob("*.h5")}
    snakemake(root, "--configfile=" + str(second), target)

    assert not (root / "results").exists()
    for name, trials in (("first", 4), ("second", 6)):
        with h5py.File(root / "runs" / name / "results" / "zoo" / "dnn_digits.h5") as f:
            n = sum(len(f[f"archs/{a}/trials/trial_id"]) for a in f["archs"])
        assert n == trials, name
        assert (root / "runs" / name / ".snakemake").is_dir()  # its own Snakemake state
    assert {p: p.stat().st_mtime_ns for p in first_files} == first_files
    assert planned_jobs(root, "--configfile=" + str(first), target) == {}


def test_jobs_import_the_checkouts_own_package_not_the_installed_one(tmp_path):
    """A job in a run directory still runs the package of the Snakefile's repository."""
    root = copy_repo(tmp_path)
    init = root / "src" / "weightzoo" / "__init__.py"
    init.write_text(
        init.read_text() + "\nimport sys\nprint('weightzoo from', __file__, file=sys.stderr)\n"
    )
    config = write_config(root, {**TINY, "run_dir": "runs/x"})
    proc = snakemake(root, "--configfile=" + str(config), "results/data/digits.npz")
    assert f"weightzoo from {init.resolve()}" in proc.stderr


def test_relative_data_dir_is_relative_to_the_repository_not_the_run(tmp_path):
    root = copy_repo(tmp_path)
    config = {
        **TINY,
        "run_dir": "runs/x",
        "data": {"data_dir": "no-data", "download": False},
        "experiments": {"dnn_mnist": {**TINY["experiments"]["dnn_digits"], "dataset": "mnist"}},
    }
    path = write_config(root, config, "mnist-here.yaml")
    proc = snakemake(root, "--configfile=" + str(path), "results/data/mnist.npz", check=False)
    assert proc.returncode != 0
    log = (root / "runs" / "x" / "results" / "logs" / "prepare_data" / "mnist.log").read_text()
    assert str(root.resolve() / "no-data") in log
    assert "runs/x/no-data" not in log


def test_unknown_config_key_fails_before_any_job(tmp_path):
    root = copy_repo(tmp_path)
    config = write_config(root, {**TINY, "training": {"epochs": 2, "learning_rate": 0.1}})
    proc = snakemake(root, "--configfile=" + str(config), "all", check=False)
    assert proc.returncode != 0
    assert "training" in proc.stderr and "learning_rate" in proc.stderr
    assert not (root / "results").exists()


def test_missing_dataset_fails_early_naming_it_and_where_it_looked(tmp_path):
    """The paper's config on a machine without MNIST/CIFAR-10 files and no network."""
    root = copy_repo(tmp_path)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    empty = tmp_path / "no-data"
    config["data"]["data_dir"] = str(empty)
    path = write_config(root, config, "paper-here.yaml")
    proc = snakemake(root, "--configfile=" + str(path), "all", check=False, timeout=300)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "mnist" in text and str(empty) in text
    assert "data_dir" in text  # how to provide the files
    assert not (root / "results" / "train").exists(), "no training job may start"
