"""Config validation (schema + semantic checks) and the plan of training jobs."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from weightzoo.config import (
    DEFAULTS,
    ConfigError,
    canonical,
    group_settings,
    load_config,
    plan_jobs,
    resolve_path,
    validate_config,
)

REPO = Path(__file__).resolve().parents[1]


def minimal():
    return {
        "experiments": {
            "dnn_digits": {
                "model": "dnn",
                "dataset": "digits",
                "trials": 6,
                "architectures": [{"widths": [5, 5]}, {"widths": [8, 8]}],
                "bands": {"low": [20, 60], "mid": [60, 85], "high": [90, 100]},
            }
        }
    }


def with_change(path: str, value):
    """The minimal config with one key (dotted path) set; value DELETE removes it."""
    config = copy.deepcopy(minimal())
    *parents, last = path.split(".")
    node = config
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


DELETE = object()
EXP = "experiments.dnn_digits"

BAD_CONFIGS = [
    # (change, words the error must contain)
    (("trainig", {"epochs": 3}), ["trainig"]),  # typo at top level
    (("training.epoch", 3), ["training", "epoch"]),  # typo in a section
    (("training.epochs", "20"), ["training.epochs", "integer"]),
    (("training.lr", 0), ["training.lr"]),
    (("training.dtype", "float16"), ["training.dtype"]),
    (("training.device", "gpu"), ["training.device"]),
    (("execution.trials_per_job", 0), ["execution.trials_per_job"]),
    (("data.download", "yes"), ["data.download", "boolean"]),
    ((f"{EXP}.model", "resnet"), [f"{EXP}.model"]),
    ((f"{EXP}.dataset", "imagenet"), [f"{EXP}.dataset"]),
    ((f"{EXP}.trials", 2.5), [f"{EXP}.trials"]),
    ((f"{EXP}.architectures", []), [f"{EXP}.architectures"]),
    ((f"{EXP}.architectures.0.widths", [5, -1]), [f"{EXP}.architectures.0.widths.1"]),
    ((f"{EXP}.bands.high", [90]), [f"{EXP}.bands.high"]),
    ((f"{EXP}.bands.top", [90, 100]), [f"{EXP}.bands", "top"]),
    ((f"{EXP}.bands.mid", [85, 60]), [f"{EXP}.bands.mid", "min 85 > max 60"]),
    ((f"{EXP}.trials", 1), [f"{EXP}.trials", "2 architectures"]),
    ((f"{EXP}.architectures", [{"widths": [5, 5]}, {"widths": [5, 5]}]), ["h5-5", "twice"]),
    ((f"{EXP}.bands", DELETE), [f"{EXP}.bands", "groups.method: relative"]),
    (("groups.method", "quantiles"), ["groups.method"]),
    (("groups.relative", {"low": [0, 40]}), ["groups.relative.low.1"]),
    (("groups.relative", {"top": [0.9, 1]}), ["groups.relative", "top"]),
    ((f"{EXP}.groups", {"method": "ranks"}), [f"{EXP}.groups.method"]),
    (("groups.accuracy", "validation"), ["groups.accuracy"]),
    (("training.strategy", "vmap"), ["training.strategy"]),
    (("execution.gpu", "yes"), ["execution.gpu"]),
    # a CNN's architecture keys are not a DNN's
    ((f"{EXP}.model", "cnn"), [f"{EXP}.architectures.0", "widths", "channels"]),
]

CNN_EXP = {
    "model": "cnn",
    "dataset": "mnist",
    "trials": 2,
    "architectures": [{"channels": 4}],
    "bands": {"high": [90, 100]},
}
VIT_EXP = {
    "model": "vit",
    "dataset": "cifar10",
    "trials": 2,
    "architectures": [{"d_model": 784, "nhead": 8, "patch": 4, "dim_feedforward": 64}],
    "bands": {"high": [40, 100]},
}
BAD_ARCHS = [
    # (experiment, architecture change, words the error must contain)
    (CNN_EXP, {"channels": 0}, ["architectures.0.channels"]),
    (CNN_EXP, {"head": "max"}, ["architectures.0.head", "max"]),
    (CNN_EXP, {"kernel": 5}, ["architectures.0", "kernel"]),
    (VIT_EXP, {"nhead": 3}, ["architectures.0", "not divisible by nhead 3"]),
    (VIT_EXP, {"patch": 5}, ["architectures.0", "patch 5 does not tile 32x32"]),
    (VIT_EXP, {"d_model": None}, ["architectures.0.d_model"]),
]


@pytest.mark.parametrize(
    ("exp", "change", "words"), BAD_ARCHS, ids=[f"{e['model']}-{c}" for e, c, _ in BAD_ARCHS]
)
def test_bad_cnn_and_vit_architectures_fail_naming_the_key(exp, change, words):
    bad = copy.deepcopy(exp)
    bad["architectures"][0].update(change)
    with pytest.raises(ConfigError) as err:
        validate_config({"experiments": {"e": bad}})
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("exp", [CNN_EXP, VIT_EXP], ids=["cnn", "vit"])
def test_good_cnn_and_vit_experiments_pass(exp):
    assert validate_config({"experiments": {"e": exp}})["experiments"]["e"]["model"] == exp["model"]


@pytest.mark.parametrize(
    ("change", "words"), BAD_CONFIGS, ids=[c[0][0] + "=" + repr(c[0][1])[:20] for c in BAD_CONFIGS]
)
def test_bad_config_fails_naming_the_key(change, words):
    with pytest.raises(ConfigError) as err:
        validate_config(with_change(*change))
    for word in words:
        assert word in str(err.value)


def test_experiment_names_must_be_file_safe():
    config = minimal()
    config["experiments"]["dnn digits/2"] = config["experiments"].pop("dnn_digits")
    with pytest.raises(ConfigError, match="dnn digits/2"):
        validate_config(config)


def test_defaults_are_filled_in():
    full = validate_config(minimal())
    assert full["training"]["batch_size"] == 100
    assert full["training"]["epochs"] == 20
    assert full["training"]["lr"] == 0.001
    assert full["execution"]["trials_per_job"] == 100


@pytest.mark.parametrize("name", ["config.yaml", "demo.yaml", "fashion-mnist.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(REPO / "config" / name)
    assert plan_jobs(config)


def test_shipped_configs_keep_their_results_apart():
    """Each shipped run has its own run directory; the paper's is where snakemake runs."""
    run_dirs = {
        name: load_config(REPO / "config" / f"{name}.yaml")["run_dir"]
        for name in ("config", "demo", "fashion-mnist")
    }
    assert run_dirs == {"config": None, "demo": "runs/demo", "fashion-mnist": "runs/fashion-mnist"}


def test_config_paths_are_relative_to_the_repository(tmp_path):
    root = tmp_path.resolve()
    assert resolve_path("runs/demo", root) == root / "runs" / "demo"
    assert resolve_path("../data", root / "repo") == root / "data"
    assert resolve_path("/srv/data", root) == Path("/srv/data")
    assert resolve_path(None, root) is None


def test_run_dir_must_be_a_path():
    config = minimal()
    config["run_dir"] = 3
    with pytest.raises(ConfigError, match="run_dir"):
        validate_config(config)


def test_invalid_yaml_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiments: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)


def test_paper_config_has_the_papers_trial_counts():
    config = load_config(REPO / "config" / "config.yaml")
    trials = {name: exp["trials"] for name, exp in config["experiments"].items()}
    assert set(trials) == {
        f"{m}_{d}" for m in ("dnn", "cnn", "vit") for d in ("mnist", "fashion-mnist", "cifar10")
    }
    for name, n in trials.items():
        assert n == (30 if name.startswith("vit") else 1000), name
    t = config["training"]
    assert (t["batch_size"], t["epochs"], t["lr"]) == (100, 20, 0.001)
    jobs = plan_jobs(config)
    assert sum(j.stop - j.start for j in jobs) == 6 * 1000 + 3 * 30


def _chunks(config):
    return {(j.experiment, j.arch_name, j.chunk) for j in plan_jobs(validate_config(config))}


def test_more_trials_only_add_jobs():
    config = with_change("execution", {"trials_per_job": 2})
    config["experiments"]["dnn_digits"]["trials"] = 4  # 2 per width: one full chunk each
    before = _chunks(config)
    config["experiments"]["dnn_digits"]["trials"] = 8
    after = _chunks(config)
    assert before < after
    assert {c[2] for c in after - before} == {"t00002-00004"}


def test_trials_are_spread_evenly_and_seeds_do_not_depend_on_chunking():
    config = validate_config(with_change("execution", {"trials_per_job": 2}))
    jobs = plan_jobs(config)
    per_arch = {}
    for j in jobs:
        per_arch.setdefault(j.arch_name, []).extend(j.seeds(0))
    assert {k: len(v) for k, v in per_arch.items()} == {"h5-5": 3, "h8-8": 3}
    whole = plan_jobs(validate_config(with_change("execution", {"trials_per_job": 100})))
    assert {j.arch_name: j.seeds(0) for j in whole} == per_arch


def test_schema_file_is_the_one_the_workflow_uses():
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    assert "config.schema.yaml" in text
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["additionalProperties"] is False


def test_gpu_resource_auto_follows_the_training_device(monkeypatch):
    import weightzoo.config
    from weightzoo.config import gpus_per_training_job

    config = validate_config(minimal())
    assert config["execution"]["gpu"] == "auto"
    monkeypatch.setattr(weightzoo.config, "planning_device_type", lambda: "cpu")
    assert gpus_per_training_job(config) == 0
    monkeypatch.setattr(weightzoo.config, "planning_device_type", lambda: "cuda")
    assert gpus_per_training_job(config) == 1
    config["training"]["device"] = "cpu"
    assert gpus_per_training_job(config) == 0
    config["execution"]["gpu"] = 2
    assert gpus_per_training_job(config) == 2


def test_relative_groups_need_no_bands_globally_or_per_experiment():
    config = with_change(f"{EXP}.bands", DELETE)
    config["groups"] = {"method": "relative"}
    assert group_settings(validate_config(config), "dnn_digits")["method"] == "relative"
    config = with_change(f"{EXP}.bands", DELETE)
    config["experiments"]["dnn_digits"]["groups"] = {"method": "relative"}
    full = validate_config(config)
    assert full["groups"]["method"] == "bands"  # the global default stays
    settings = group_settings(full, "dnn_digits")
    assert settings["method"] == "relative"
    assert settings["relative"] == {"low": [0.0, 0.4], "mid": [0.45, 0.75], "high": [0.8, 1.0]}
    assert settings["accuracy"] == "test"  # the rest comes from the global section


def test_own_relative_bands_replace_the_defaults_as_a_whole():
    config = minimal()
    config["groups"] = {"method": "relative", "relative": {"high": [0.9, 1.0]}}
    assert group_settings(validate_config(config), "dnn_digits")["relative"] == {"high": [0.9, 1.0]}


LIGHT_CHECK = """
import sys
from pathlib import Path

import weightzoo.codedeps
import weightzoo.config
import weightzoo.figures.registry

for name in ("demo.yaml", "config.yaml"):
    config = weightzoo.config.load_config(Path("config") / name)
    weightzoo.config.plan_jobs(config)
heavy = ("torch", "scipy", "sklearn", "matplotlib", "pandas", "numpy")
print(sorted({m.split(".")[0] for m in sys.modules} & set(heavy)))
"""


def test_validating_a_config_imports_no_heavy_library():
    """What Snakemake's process does while it builds the DAG (workflow/rules/common.smk):
    no torch, scipy, scikit-learn, matplotlib, pandas or numpy."""
    out = subprocess.run(
        [sys.executable, "-c", LIGHT_CHECK], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def documented(section: str):
    """A section of config/config.yaml, the commented file that documents every default."""
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())[section]


@pytest.mark.parametrize("section", [k for k in DEFAULTS if k != "groups"])
def test_config_yaml_documents_the_defaults_the_code_uses(section):
    assert documented(section) == DEFAULTS[section]


def test_config_yaml_documents_the_group_defaults():
    from weightzoo.analysis.group_rules import DEFAULT_RELATIVE

    groups = documented("groups")
    relative = groups.pop("relative")
    assert groups == DEFAULTS["groups"]
    assert relative == {g: list(edges) for g, edges in DEFAULT_RELATIVE.items()}


def test_training_and_claims_defaults_come_from_their_settings():
    from dataclasses import fields

    from weightzoo.analysis.claims.settings import ClaimSettings
    from weightzoo.train.settings import TrainSettings

    training = {f.name: f.default for f in fields(TrainSettings)}
    assert {**DEFAULTS["training"], "checkpoint_epochs": ()} == training
    claims = {f.name: f.default for f in fields(ClaimSettings) if f.name != "accuracy"}
    assert DEFAULTS["claims"] == claims


def test_trial_seeds_do_not_change():
    """Pinned: a changed seed would silently change every zoo."""
    from weightzoo.train.seeds import trial_seed

    config = validate_config(minimal())
    first = next(j for j in plan_jobs(config) if j.arch_name == "h5-5")
    assert first.seeds(0)[0] == 7917524746300433821  # the plan's seeds: the job's too
    assert trial_seed(0, "dnn_digits", "h5-5", 0) == 7917524746300433821
    assert trial_seed(0, "dnn_digits", "h5-5", 99) == 4539453292999315450
    assert trial_seed(7, "vit_digits", "d64-h4-p4-f128", 3) == 6496509051022575562


def reordered(value):
    """``value`` with every mapping's keys in reverse order, recursively."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


def test_canonical_sorts_every_mapping_and_keeps_list_order():
    value = {"b": [{"z": 1, "a": 2}, 3], "a": {"y": (2, 1), "x": None}}
    assert repr(canonical(value)) == "{'a': {'x': None, 'y': (2, 1)}, 'b': [{'a': 2, 'z': 1}, 3]}"
    assert canonical(reordered(value)) == canonical(value)


def test_reordered_keys_plan_the_same_jobs_with_the_same_params():
    """Rule params compare by repr: a job's architecture must not carry the file's order."""
    raw = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    jobs = sorted(repr(j) for j in plan_jobs(validate_config(raw)))
    assert jobs == sorted(repr(j) for j in plan_jobs(validate_config(reordered(raw))))
    assert any("'dim_feedforward': 128, 'nhead'" in j for j in jobs)  # the ViT's, sorted
