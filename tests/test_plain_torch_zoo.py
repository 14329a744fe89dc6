"""A zoo weightzoo did not train, as docs/dataset.md shows it: a plain PyTorch sweep of a
small ``nn.Sequential`` over seeds, learning rates and two widths on scikit-learn's digits
(the page's ``sweep.py``, run as written), saved as a checkpoint folder, imported and
re-evaluated with the page's own command lines, analysed by every weights-only stage, and
learned from by the page's predictor."""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_generic import weights_only_analysis

from weightzoo.cli import main
from weightzoo.zoo.hdf5 import read_zoo

PAGE = Path(__file__).resolve().parents[1] / "docs" / "dataset.md"
MARKED = re.compile(r"^<!-- (.+?) -->\n```(\w*)\n(.*?)^```", re.M | re.S)
SHELL = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


def marked_blocks() -> dict[str, str]:
    """The page's code blocks that follow a ``<!-- ... -->`` line, by that line's text."""
    return {note: code for note, _, code in MARKED.findall(PAGE.read_text())}


def weightzoo_lines() -> list[list[str]]:
    """The page's ``weightzoo ...`` command lines, split as a shell would."""
    lines = [line for block in SHELL.findall(PAGE.read_text()) for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("weightzoo ")]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A folder where the page's sweep ran and its commands were typed."""
    root = tmp_path_factory.mktemp("plain")
    (root / "sweep.py").write_text(marked_blocks()["file: sweep.py"])
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.syspath_prepend(str(root))
        runpy.run_path("sweep.py", run_name="__main__")
        for argv in weightzoo_lines():
            assert main(argv) == 0, argv
    return root


def test_the_sweep_imports_as_two_architectures_with_its_settings(sweep):
    zoo = read_zoo(sweep / "zoo.h5", weights=("final",))
    table = pd.read_csv(sweep / "sweep" / "trials.csv")
    assert zoo.model == "generic" and zoo.dataset == "digits"
    assert {a.arch_name: a.n_trials for a in zoo.archs} == {"mlp8": 9, "mlp32": 9}
    for a in zoo.archs:
        names = [name for name, _ in a.arch["parameters"]]  # the state dict's order
        assert names == ["1.weight", "1.bias", "3.weight", "3.bias"] and set(a.final) == set(names)
        assert sorted(set(a.hparams["lr"])) == [1e-3, 1e-2, 1e-1]
    accs = np.concatenate([a.metrics["test_acc"][:, -1] for a in zoo.archs])
    np.testing.assert_allclose(np.sort(accs), np.sort(table["test_acc"]), atol=1e-6)
    assert table["test_acc"].max() > 0.8  # some trials learned


def test_evaluate_with_the_model_class_gives_the_sweeps_accuracy(sweep, capsys, monkeypatch):
    monkeypatch.chdir(sweep)  # the user's module lies in the current folder
    argv = next(a for a in weightzoo_lines() if a[0] == "evaluate")
    assert main([*argv, "-o", "evaluated.csv"]) == 0, capsys.readouterr().err
    evaluated = pd.read_csv(sweep / "evaluated.csv")
    assert len(evaluated) == 9 and set(evaluated["arch"]) == {"mlp8"}
    np.testing.assert_allclose(evaluated["test_acc"], evaluated["stored_test_acc"], atol=1e-6)


def test_a_forward_pass_without_a_model_class_says_to_pass_model(sweep, capsys, monkeypatch):
    monkeypatch.chdir(sweep)
    assert main(["evaluate", "zoo.h5", "--data", "digits"]) == 2
    assert "--model package.module:Class" in capsys.readouterr().err
    args = ["evaluate", "zoo.h5", "--data", "digits", "--model", "sweep:mlp", "--arch", "mlp8"]
    # the wrong constructor arguments: the names and shapes that do not fit
    assert main([*args, "--model-args", '{"hidden": 5}']) == 2
    assert "shapes (stored vs module)" in capsys.readouterr().err
    assert main([*args, "--model-args", "hidden=5"]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["evaluate", "zoo.h5", "--data", "digits", "--model", "nowhere:mlp"]) == 2
    assert "cannot import nowhere" in capsys.readouterr().err


def test_the_pages_predictor_trains_on_the_sweep(sweep, capsys, monkeypatch):
    monkeypatch.chdir(sweep)
    exec(compile(marked_blocks()["test: runs in a folder holding zoo.h5"], str(PAGE), "exec"), {})
    assert "mean absolute error" in capsys.readouterr().out


def test_every_weights_only_stage_runs_on_the_sweep(sweep):
    from weightzoo.stages.groups import assign_groups

    assign_groups(sweep / "zoo.h5", sweep / "groups.csv", None, {"method": "relative"})
    paths = weights_only_analysis(sweep / "zoo.h5", sweep / "groups.csv", sweep / "results")
    features = pd.read_parquet(paths["features"])
    assert set(features["layer"]) == {"1", "3"} and len(features) == 18 * 2
    assert {"hp_lr", "setting_id"} <= set(features)
    assert (sweep / "results" / "node_strength_generic.png").exists()


def test_weightzoos_own_zoo_runs_in_its_reference_module(tmp_path):
    from test_figures import make_arch

    from weightzoo.zoo.hdf5 import Zoo, write_zoo
    from weightzoo.zoo.modelclass import evaluate_zoo

    zoo = Zoo("dnn_digits", "dnn", "digits", [make_arch((4, 3), [0.2, 0.5, 0.9], 1)])
    write_zoo(tmp_path / "dnn.h5", zoo)
    table = evaluate_zoo(tmp_path / "dnn.h5", "digits", trials=[0, 2])
    assert list(table["trial_id"]) == [0, 2] and table["test_acc"].between(0, 1).all()
    assert table["stored_test_acc"].tolist() == pytest.approx([0.2, 0.9])


@pytest.mark.slow
def test_the_sweep_as_a_source_experiment_runs_the_whole_workflow(sweep, tmp_path):
    """The documented way to analyse a zoo trained elsewhere (docs/import.md): an
    experiment with `source:`; `snakemake all` imports it and draws every figure, the
    claims, the predictor and Table 2 (in a copy of the repo, as tests/test_workflow.py)."""
    import shutil

    from test_workflow import copy_repo, snakemake, write_config

    (tmp_path / "repo").mkdir()
    root = copy_repo(tmp_path / "repo")
    shutil.copytree(sweep / "sweep", root / "imports" / "sweep")
    experiment = {
        "source": {"format": "checkpoints", "path": "imports/sweep", "dataset": "digits"},
        "groups": {"method": "relative"},
    }
    config = {
        "run_dir": None,
        "experiments": {"sweep_digits": experiment},
        "claims": {"permutations": 99, "bootstrap": 99},
    }
    snakemake(root, f"--configfile={write_config(root, config, 'sweep.yaml')}", "all")
    results = root / "results"
    for name in ("weight_stats", "weight_kde", "node_strength", "tsne"):
        assert (results / "figures" / f"{name}_generic.png").stat().st_size > 1000, name
    assert not list((results / "figures").glob("rwc_*"))  # an imported zoo has no dynamics
    assert "sweep_digits" in (results / "claims" / "claims.csv").read_text()
    scores = pd.read_csv(results / "predict" / "sweep_digits.csv")
    assert (scores["status"] == "ok").any()
    assert "generic" in (results / "tables" / "table2.md").read_text()
