"""An imported experiment (config `source:`) in the Snakemake workflow: rule import_zoo
writes its zoo in place of train + merge_zoo, the analyses run on it, and a changed source
file re-imports it (in a copy of the repo, as tests/test_workflow.py does)."""

from __future__ import annotations

import json

import h5py
import pytest
import torch
from test_import import mlp, write_checkpoints
from test_workflow import copy_repo, planned_jobs, snakemake, write_config

from weightzoo.analysis.features import read_features

pytestmark = pytest.mark.slow

EXPERIMENT = "mlp_imported"
CONFIG = {
    "run_dir": None,
    "features": {"spectral": False},
    "experiments": {
        EXPERIMENT: {
            "source": {"format": "checkpoints", "path": "imports/mlp", "dataset": "digits"},
            "groups": {"method": "relative"},
        }
    },
}
TARGETS = [
    f"results/{kind}/{EXPERIMENT}.{ext}"
    for kind, ext in (("zoo", "h5"), ("groups", "csv"), ("features", "parquet"))
]


def test_an_imported_experiment_runs_the_analyses_and_reimports_a_changed_source(tmp_path):
    (tmp_path / "repo").mkdir()
    root = copy_repo(tmp_path / "repo")
    write_checkpoints(root / "imports" / "mlp", n=6)
    config = write_config(root, CONFIG, "imported.yaml")
    jobs = planned_jobs(root, f"--configfile={config}", *TARGETS)
    assert "import_zoo" in jobs and "train" not in jobs and "merge_zoo" not in jobs
    assert "prepare_data" not in jobs  # an imported zoo needs no dataset
    snakemake(root, f"--configfile={config}", *TARGETS)
    with h5py.File(root / TARGETS[0]) as f:
        assert f.attrs["model"] == "generic" and f.attrs["dataset"] == "digits"
        assert json.loads(f.attrs["provenance"])["format"] == "checkpoints"
    features = read_features(root / TARGETS[2])
    assert features["trial_id"].nunique() == 6 and set(features["model"]) == {"generic"}
    assert planned_jobs(root, f"--configfile={config}", *TARGETS) == {}
    torch.save(mlp(42), root / "imports" / "mlp" / "t2.pt")  # one trial changed
    jobs = planned_jobs(root, f"--configfile={config}", *TARGETS)
    assert {"import_zoo", "assign_groups", "features"} <= set(jobs)
