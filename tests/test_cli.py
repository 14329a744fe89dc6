"""The `weightzoo` command: info, trials, export, and its one-line errors (exit code 2)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from test_figures import make_arch  # synthetic architectures: known accuracies, no training
from test_zoo import ACCS, DNN, META, SETTINGS, train_chunk, with_settings  # as the zoo tests

from weightzoo.analysis.groups import assign_groups, read_groups_csv, write_groups_csv
from weightzoo.cli import main
from weightzoo.train.models import trial_state_dict
from weightzoo.train.shapes import SHAPES  # the model families this weightzoo knows
from weightzoo.train.trainer import TensorData
from weightzoo.zoo import hdf5 as zoo_io

REPO = Path(__file__).resolve().parents[1]
ARCHS = {"h16-8": ({"widths": [16, 8]}, [0, 1, 2]), "h6-6": ({"widths": [6, 6]}, [0, 1])}
BANDS = {"low": [20, 60], "mid": [60, 85], "high": [90, 100]}


@pytest.fixture(scope="module")
def digits(digits_arrays):
    return TensorData.from_arrays(*digits_arrays, 16, dtype=torch.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits):
    """A zoo of 5 DNN trials (2 epochs) in two architectures, a job file and a groups file."""
    root = tmp_path_factory.mktemp("cli")
    jobs = []
    for name, (arch, ids) in ARCHS.items():
        jobs.append(root / f"job-{name}.h5")
        zoo_io.write_job_file(jobs[-1], train_chunk(digits, arch, ids), META)
    zoo_path = root / "dnn_digits.h5"
    zoo = zoo_io.merge_job_files(jobs, zoo_path, {"trials": 5, "bands": BANDS})
    groups_path = root / "dnn_digits.csv"
    write_groups_csv(assign_groups(zoo.trials_table(), BANDS), groups_path)
    return {"zoo": zoo_path, "job": jobs[0], "groups": groups_path, "root": root}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- info


def test_info_names_the_experiment_its_architectures_and_how_it_was_trained(files, capsys):
    code, out, err = run(capsys, "info", files["zoo"])
    assert (code, err) == (0, "")
    lines = dict(line.split(None, 1) for line in out.splitlines() if line and line[0] != " ")
    assert lines["experiment"] == "dnn_digits"
    assert lines["model"] == "dnn" and lines["dataset"] == "digits"
    assert lines["trials"] == "5 in 2 architectures"
    assert lines["epochs"] == "2"
    assert "KiB)" in lines["zoo"] and str(files["zoo"]) in lines["zoo"]
    assert "init_std=0.1" in lines["settings"] and "epochs=2" in lines["settings"]
    assert f"torch {torch.__version__}" in lines["versions"]
    assert json.loads(lines["config"]) == {"trials": 5, "bands": BANDS}
    rows = {row.split()[0]: row.split() for row in out.splitlines() if row.startswith("  h")}
    assert rows["h16-8"][1:3] == ["3", "0..2"] and rows["h6-6"][1:3] == ["2", "0..1"]


def test_info_json_counts_trials_and_parameters_per_architecture(files, capsys):
    code, out, _ = run(capsys, "info", files["zoo"], "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["file_bytes"] == files["zoo"].stat().st_size
    assert summary["trials"] == 5 and summary["epochs"] == [2]
    by_arch = {a["arch"]: a for a in summary["architectures"]}
    assert by_arch["h16-8"]["trials"] == 3 and by_arch["h6-6"]["trials"] == 2
    # 64 -> 16 -> 8 -> 10 and 64 -> 6 -> 6 -> 10, weights and biases
    assert by_arch["h16-8"]["params_per_trial"] == 64 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10
    assert by_arch["h6-6"]["params_per_trial"] == 64 * 6 + 6 + 6 * 6 + 6 + 6 * 10 + 10
    assert by_arch["h16-8"]["spec"] == {"widths": [16, 8]}
    assert "groups" not in summary


def test_architectures_are_listed_in_the_configs_order(files, tmp_path, capsys):
    config = {"trials": 5, "architectures": [{"widths": [6, 6]}, {"widths": [16, 8]}]}
    zoo_io.merge_job_files(sorted(files["root"].glob("job-*.h5")), tmp_path / "z.h5", config)
    _, out, _ = run(capsys, "info", tmp_path / "z.h5", "--json")
    assert [a["arch"] for a in json.loads(out)["architectures"]] == ["h6-6", "h16-8"]
    _, out, _ = run(capsys, "trials", tmp_path / "z.h5")
    assert pd.read_csv(io.StringIO(out))["arch"].tolist() == ["h6-6"] * 2 + ["h16-8"] * 3


def test_info_with_groups_counts_trials_per_group_and_architecture(files, capsys):
    code, out, _ = run(capsys, "info", files["zoo"], "--groups", files["groups"], "--json")
    assert code == 0
    counts = json.loads(out)["groups"]["per_arch"]
    expected = read_groups_csv(files["groups"]).groupby("arch")["group"].value_counts()
    for (arch, group), n in expected.items():
        assert counts[arch][group] == n
    assert {a: sum(c.values()) for a, c in counts.items()} == {"h16-8": 3, "h6-6": 2}
    code, text, _ = run(capsys, "info", files["zoo"], "--groups", files["groups"])
    header = next(line for line in text.splitlines() if line.startswith("  arch"))
    assert header.split()[-6:-1] == ["non", "low", "mid", "high", "between"]


# --------------------------------------------------------------------------- trials


def test_trials_prints_the_zoo_table_as_csv(files, capsys):
    code, out, _ = run(capsys, "trials", files["zoo"])
    assert code == 0
    printed = pd.read_csv(io.StringIO(out))
    expected = zoo_io.read_zoo(files["zoo"], weights=()).trials_table()
    assert list(printed.columns) == list(expected.columns)
    assert printed["arch"].tolist() == ["h16-8"] * 3 + ["h6-6"] * 2
    assert np.allclose(printed["final_test_acc"], expected["final_test_acc"], rtol=1e-6)
    assert printed["seed"].tolist() == expected["seed"].tolist()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_trials_with_groups_writes_each_trials_group(files, capsys, suffix):
    out_path = files["root"] / f"trials{suffix}"
    code, out, _ = run(capsys, "trials", files["zoo"], "--groups", files["groups"], "-o", out_path)
    assert code == 0 and f"wrote {out_path}: 5 trials" in out
    table = pd.read_csv(out_path) if suffix == ".csv" else pd.read_parquet(out_path)
    groups = read_groups_csv(files["groups"])
    joined = table.merge(groups, on=["arch", "trial_id"], suffixes=("", "_file"))
    assert len(joined) == 5 and (joined["group"] == joined["group_file"]).all()
    assert {"grouped_by", "group_acc_pct", "final_test_acc"} <= set(table.columns)


def test_trials_shows_the_settings_a_zoo_varies(tmp_path, capsys):
    """A zoo that varies its training: `trials` prints setting_id and hp_<name> after the
    trial's fields (synthetic trials, no training), with or without the groups file."""
    varied = with_settings(make_arch((4, 3), ACCS, 1))
    zoo = zoo_io.Zoo("dnn_digits", "dnn", "digits", [varied, make_arch((6, 5), ACCS, 2)])
    zoo_io.write_zoo(tmp_path / "zoo.h5", zoo)
    write_groups_csv(assign_groups(zoo.trials_table(), BANDS), tmp_path / "groups.csv")
    code, out, _ = run(capsys, "trials", tmp_path / "zoo.h5")
    assert code == 0
    printed = pd.read_csv(io.StringIO(out))
    at = list(printed.columns).index("diverged_epoch") + 1
    assert list(printed.columns)[at : at + len(SETTINGS)] == SETTINGS
    mine = printed[printed["arch"] == "h4-3"]
    assert mine["hp_optimizer"].tolist() == varied.hparams["optimizer"].tolist()
    assert mine["hp_lr"].tolist() == varied.hparams["lr"].tolist()
    assert printed.loc[printed["arch"] == "h6-5", "hp_lr"].isna().all()  # varies nothing
    out_path = tmp_path / "trials.parquet"
    groups = ["--groups", tmp_path / "groups.csv"]
    assert run(capsys, "trials", tmp_path / "zoo.h5", *groups, "-o", out_path)[0] == 0
    table = pd.read_parquet(out_path)
    assert set(SETTINGS) <= set(table.columns) and "group" in table
    assert table["setting_id"].dtype == "Int64"


# --------------------------------------------------------------------------- export


def evaluate(state: dict, arch: dict, data: TensorData) -> float:
    model = DNN.reference_module(arch, (1, 8, 8), 10)
    model.load_state_dict(state)
    with torch.no_grad():
        return (model(data.x_test).argmax(1) == data.y_test).double().mean().item()


@pytest.mark.parametrize("arch_name", list(ARCHS))
def test_exported_trial_loads_and_gives_its_recorded_test_accuracy(
    files, capsys, digits, arch_name
):
    stored = next(a for a in zoo_io.read_zoo(files["zoo"]).archs if a.arch_name == arch_name)
    params = {n: torch.from_numpy(v) for n, v in stored.final.items()}
    for k in range(stored.n_trials):
        out_path = files["root"] / f"{arch_name}-{k}.pt"
        code, out, _ = run(
            capsys, "export", files["zoo"], "--arch", arch_name, "--trial", k, "-o", out_path
        )
        assert code == 0 and f"wrote {out_path}" in out
        state = torch.load(out_path, weights_only=True)
        expected = trial_state_dict(params, k)
        assert state.keys() == expected.keys()
        assert all(torch.equal(state[n], expected[n]) for n in state)
        recorded = float(stored.metrics["test_acc"][k, -1])
        assert evaluate(state, stored.arch, digits) == pytest.approx(recorded, abs=1e-7)


def test_export_by_trial_id_and_initial_weights(files, capsys):
    stored = next(a for a in zoo_io.read_zoo(files["zoo"]).archs if a.arch_name == "h16-8")
    out_path = files["root"] / "initial.pt"
    argv = ["export", files["zoo"], "--arch", "h16-8", "--trial-id", 2, "--weights", "initial"]
    code, out, _ = run(capsys, *argv, "-o", out_path)
    assert code == 0 and "trial_id 2" in out
    state = torch.load(out_path, weights_only=True)
    assert np.array_equal(state["fc1.weight"].numpy(), stored.initial["fc1.weight"][2])


def test_export_help_says_the_trial_is_an_index_within_the_architecture(capsys):
    code, out, _ = run(capsys, "export", "--help")
    assert code == 0
    assert "index within the architecture" in " ".join(out.split())


# --------------------------------------------------------------------------- errors


def write_text_file(root: Path) -> Path:
    (root / "notes.h5").write_text("not hdf5\n")
    return root / "notes.h5"


def write_foreign_hdf5(root: Path) -> Path:
    with h5py.File(root / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    return root / "other.h5"


def write_truncated_zoo(root: Path, zoo: Path) -> Path:
    (root / "cut.h5").write_bytes(zoo.read_bytes()[:4096])  # HDF5 signature, no data
    return root / "cut.h5"


def write_zoo_of_unknown_model(root: Path, zoo: Path) -> Path:
    other = zoo_io.read_zoo(zoo)
    other.model = "mlp"
    zoo_io.write_zoo(root / "mlp.h5", other)
    return root / "mlp.h5"


def write_other_experiments_groups(root: Path, groups: Path) -> Path:
    table = read_groups_csv(groups)
    table["experiment"] = "cnn_digits"
    write_groups_csv(table, root / "cnn_digits.csv")
    return root / "cnn_digits.csv"


def write_groups_missing_a_trial(root: Path, groups: Path) -> Path:
    write_groups_csv(read_groups_csv(groups).iloc[1:], root / "short.csv")
    return root / "short.csv"


ERRORS = {
    "missing file": (
        lambda f: ["info", f["root"] / "nope.h5"],
        ["nope.h5", "no such file"],
    ),
    "text file": (
        lambda f: ["trials", write_text_file(f["root"])],
        ["notes.h5", "not an HDF5 file", "results/zoo/<experiment>.h5"],
    ),
    "foreign HDF5 file": (
        lambda f: ["info", write_foreign_hdf5(f["root"])],
        ["other.h5", "not a weightzoo HDF5 file"],
    ),
    "truncated zoo file": (
        lambda f: ["info", write_truncated_zoo(f["root"], f["zoo"])],
        ["cut.h5", "cannot be read as a weightzoo zoo file", "truncated"],
    ),
    "job file": (
        lambda f: ["export", f["job"], "--arch", "h16-8", "--trial", 0, "-o", f["root"] / "x.pt"],
        ["job-h16-8.h5", "training job file", "h16-8", "not a zoo file"],
    ),
    "unknown architecture": (
        lambda f: ["export", f["zoo"], "--arch", "h99", "--trial", 0, "-o", f["root"] / "x.pt"],
        ["'h99'", "architectures in this zoo: h16-8, h6-6"],
    ),
    "trial out of range": (
        lambda f: ["export", f["zoo"], "--arch", "h6-6", "--trial", 2, "-o", f["root"] / "x.pt"],
        ["--trial 2", "h6-6", "has 2 trials", "--trial 0..1"],
    ),
    "negative trial": (
        lambda f: ["export", f["zoo"], "--arch", "h6-6", "--trial", -1, "-o", f["root"] / "x.pt"],
        ["--trial -1", "--trial 0..1"],
    ),
    "unknown trial id": (
        lambda f: ["export", f["zoo"], "--arch", "h6-6", "--trial-id", 7, "-o", f["root"] / "x.pt"],
        ["--trial-id 7", "h6-6", "trial ids: 0..1"],
    ),
    "zoo of an unknown model": (
        lambda f: (
            ["export", write_zoo_of_unknown_model(f["root"], f["zoo"])]
            + ["--arch", "h6-6", "--trial", 0, "-o", f["root"] / "x.pt"]
        ),
        ["mlp.h5", f"unknown model 'mlp'; known models: {', '.join(sorted(SHAPES))}"],
    ),
    "missing groups file": (
        lambda f: ["info", f["zoo"], "--groups", f["root"] / "none.csv"],
        ["groups file", "none.csv", "no such file"],
    ),
    "groups file of another experiment": (
        lambda f: [
            "trials",
            f["zoo"],
            "--groups",
            write_other_experiments_groups(f["root"], f["groups"]),
        ],
        ["cnn_digits.csv", "experiment(s) cnn_digits", "zoo is experiment dnn_digits"],
    ),
    "groups file missing a trial": (
        lambda f: [
            "info",
            f["zoo"],
            "--groups",
            write_groups_missing_a_trial(f["root"], f["groups"]),
        ],
        ["short.csv", "1 trials of the zoo are not in it"],
    ),
    "zoo as groups file": (
        lambda f: ["info", f["zoo"], "--groups", f["zoo"]],
        ["dnn_digits.h5", "not a weightzoo groups file"],
    ),
    "unknown table format": (
        lambda f: ["trials", f["zoo"], "-o", f["root"] / "t.xlsx"],
        ["t.xlsx", ".xlsx", "t.csv or t.parquet"],
    ),
}


@pytest.fixture
def error_files(files, tmp_path):
    """The fixture's zoo, job and groups files, and an empty folder for the broken ones."""
    return {**files, "root": tmp_path}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_input_is_one_line_on_stderr_with_exit_code_2(error_files, capsys, case):
    make_argv, expected = ERRORS[case]
    code, out, err = run(capsys, *make_argv(error_files))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("weightzoo ")
    for text in expected:
        assert text in err
    assert not (error_files["root"] / "x.pt").exists()


def test_a_failed_write_is_one_line_with_exit_code_1(files, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    out_path = tmp_path / "file" / "trial.pt"  # its folder is a file
    code, _, err = run(
        capsys, "export", files["zoo"], "--arch", "h6-6", "--trial", 0, "-o", out_path
    )
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("weightzoo export: error:") and str(tmp_path / "file") in err


def test_read_trial_params_reads_one_trial_and_names_what_exists(files):
    stored = next(a for a in zoo_io.read_zoo(files["zoo"]).archs if a.arch_name == "h16-8")
    one = zoo_io.read_trial_params(files["zoo"], "h16-8", 1, weights="initial")
    assert one.keys() == stored.initial.keys()
    assert all(np.array_equal(one[n], stored.initial[n][1]) for n in one)
    with pytest.raises(ValueError, match="no architecture 'h1'; architectures: h16-8, h6-6"):
        zoo_io.read_trial_params(files["zoo"], "h1", 0)
    with pytest.raises(ValueError, match="h6-6 has 2 trials, index 2 is not in 0..1"):
        zoo_io.read_trial_params(files["zoo"], "h6-6", 2)
    with pytest.raises(ValueError, match="training job file"):
        zoo_io.read_trial_params(files["job"], "h16-8", 0)


def test_usage_errors_exit_with_code_2(capsys):
    code, _, err = run(capsys, "export", "zoo.h5", "--arch", "h6-6", "-o", "x.pt")
    assert code == 2 and "one of the arguments --all --trial --trial-id is required" in err
    code, _, err = run(capsys, "export", "zoo.h5", "--trial", "0", "-o", "x.pt")
    assert code == 2 and "--arch NAME is needed with --trial or --trial-id" in err
    assert run(capsys)[0] == 2  # no subcommand


# --------------------------------------------------------------------------- installed


def env_with_this_checkout() -> dict:
    path = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def console_script() -> Path:
    script = Path(sys.executable).parent / "weightzoo"
    if not script.exists():
        pytest.skip(
            f"{script} not installed: the environment was installed before pyproject.toml "
            "declared the script; reinstall with `pip install -e .`"
        )
    return script


@pytest.mark.parametrize(
    "command",
    [
        ["console script"],
        [sys.executable, "-m", "weightzoo.cli"],
        [sys.executable, "-m", "weightzoo"],
    ],
    ids=["console-script", "python-m-weightzoo.cli", "python-m-weightzoo"],
)
def test_command_runs_as_a_program(files, command):
    if command == ["console script"]:
        command = [str(console_script())]

    def call(*argv):
        return subprocess.run(
            [*command, *map(str, argv)],
            capture_output=True,
            text=True,
            env=env_with_this_checkout(),
        )

    ok = call("info", files["zoo"])
    assert ok.returncode == 0, ok.stderr
    assert "dnn_digits" in ok.stdout and "h16-8" in ok.stdout
    bad = call("export", files["zoo"], "--arch", "h99", "--trial", 0, "-o", files["root"] / "y.pt")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"weightzoo export: error: {files['zoo']}: no architecture 'h99'; "
        "architectures in this zoo: h16-8, h6-6"
    ]
