"""Per-trial training settings (weightzoo.train.hparams): each trial's values follow from its
identity alone, stay in their ranges, keep their distribution, and bad input names its key."""

import math
import subprocess
import sys

import pytest

from weightzoo.train.hparams import (
    ACTIVATIONS,
    INITS,
    OPTIMIZERS,
    Choice,
    Fixed,
    HparamError,
    LogUniform,
    Uniform,
    parse_spec,
    sample_trial,
)
from weightzoo.train.seeds import trial_seed

SPEC = {
    "epochs": 5,
    "lr": {"loguniform": [1e-4, 1e-1]},
    "init_std": {"loguniform": [1e-3, 1.0]},
    "weight_decay": {"loguniform": [1e-8, 1e-2], "zero_share": 0.5},
    "dropout": {"uniform": [0.0, 0.7]},
    "train_fraction": {"choice": [0.1, 0.25, 0.5, 1.0]},
    "optimizer": {"choice": list(OPTIMIZERS)},
    "activation": {"choice": list(ACTIVATIONS)},
    "init": {"choice": list(INITS)},
}
ID = (0, "dnn_digits", "h20-20")


def draws(trial_ids, spec=SPEC, identity=ID, replicates=1):
    parsed = parse_spec(spec)
    return [sample_trial(parsed, *identity, i, replicates=replicates) for i in trial_ids]


# Pinned once computed: a change here changes every stored zoo's settings. Never update.
GOLDEN = [
    (
        (0, "dnn_digits", "h20-20", 0),
        {
            "epochs": 5,
            "lr": 0.036094380520680355,
            "init_std": 0.18719731772971274,
            "weight_decay": 4.3193046859832287e-08,
            "dropout": 0.6823990105916331,
            "train_fraction": 0.1,
            "optimizer": "rmsprop",
            "activation": "tanh",
            "init": "he_uniform",
        },
    ),
    (
        (1, "cnn_fashion-mnist", "c16-16-16", 7),
        {
            "epochs": 5,
            "lr": 0.000281863096358352,
            "init_std": 0.021914494544087507,
            "weight_decay": 5.785100442643597e-06,
            "dropout": 0.10373125303838879,
            "train_fraction": 0.5,
            "optimizer": "adam",
            "activation": "relu",
            "init": "he_uniform",
        },
    ),
]


@pytest.mark.parametrize("identity, expected", GOLDEN)
def test_golden_values_never_change(identity, expected):
    got = sample_trial(SPEC, *identity)
    assert list(got) == list(expected)
    for name, value in expected.items():
        assert got[name] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value)


def test_parse_gives_frozen_settings_in_config_order():
    spec = parse_spec(SPEC)
    kinds = dict(spec.settings)
    assert kinds["epochs"] == Fixed(5)
    assert kinds["lr"] == LogUniform(1e-4, 1e-1)
    assert kinds["weight_decay"] == LogUniform(1e-8, 1e-2, 0.5)
    assert kinds["dropout"] == Uniform(0.0, 0.7)
    assert kinds["optimizer"] == Choice(OPTIMIZERS)
    assert spec.varied() == tuple(SPEC)[1:]
    with pytest.raises(AttributeError):
        spec.settings = ()


def test_distinct_identities_give_distinct_values():
    identities = [(0, "dnn_digits", "h20-20"), (1, "dnn_digits", "h20-20")]
    identities += [(0, "cnn_digits", "h20-20"), (0, "dnn_digits", "h8-8")]
    lrs = {d["lr"] for identity in identities for d in draws(range(50), identity=identity)}
    assert len(lrs) == 4 * 50


def test_adding_trials_keeps_existing_values():
    assert draws(range(100))[:10] == draws(range(10))


def test_settings_do_not_depend_on_each_other_or_their_order():
    alone = draws(range(20), spec={"lr": SPEC["lr"]})
    reordered = draws(range(20), spec=dict(reversed(SPEC.items())))
    assert [d["lr"] for d in alone] == [d["lr"] for d in reordered]
    assert [d["optimizer"] for d in reordered] == [d["optimizer"] for d in draws(range(20))]


def test_replicates_share_settings_not_seeds():
    k = 3
    shared = draws(range(12), replicates=k)
    for j in range(4):
        group = shared[k * j : k * j + k]
        assert all(d == group[0] for d in group)
        assert len({trial_seed(*ID, i) for i in range(k * j, k * j + k)}) == k
    assert shared[0] != shared[k]
    assert shared[::k] == draws(range(4))  # setting j is what trial j draws alone


def test_values_lie_in_their_ranges_and_keep_their_distribution():
    trials = draws(range(2000))
    for name in ("lr", "init_std"):
        low, high = SPEC[name]["loguniform"]
        values = [d[name] for d in trials]
        assert all(low <= v <= high for v in values)
        normed = [(math.log(v) - math.log(low)) / (math.log(high) - math.log(low)) for v in values]
        assert 0.45 <= sum(normed) / len(normed) <= 0.55
    decays = [d["weight_decay"] for d in trials]
    assert abs(sum(v == 0.0 for v in decays) / len(decays) - 0.5) <= 0.05
    assert all(1e-8 <= v <= 1e-2 for v in decays if v != 0.0)
    assert all(0.0 <= d["dropout"] < 0.7 for d in trials)
    for name in ("train_fraction", "optimizer", "activation", "init"):
        assert {d[name] for d in trials} == set(SPEC[name]["choice"])


@pytest.mark.parametrize("share", [0.0, 0.2, 1.0])
def test_zero_share_gives_that_share_of_zeros(share):
    spec = {"weight_decay": {"loguniform": [1e-6, 1e-3], "zero_share": share}}
    zeros = sum(d["weight_decay"] == 0.0 for d in draws(range(2000), spec=spec)) / 2000
    assert abs(zeros - share) <= 0.05


BAD = [
    ({"lr": {"normal": [0, 1]}}, "training.lr", "unknown distribution"),
    ({"lr": {"loguniform": [1e-1, 1e-4]}}, "training.lr.loguniform", "low"),
    ({"dropout": {"uniform": [0.3, 0.3]}}, "training.dropout.uniform", "low"),
    ({"lr": 0}, "training.lr", "not a valid lr"),
    ({"lr": -1e-3}, "training.lr", "not a valid lr"),
    ({"lr": {"loguniform": [0, 1e-2]}}, "training.lr.loguniform[0]", "not a valid lr"),
    ({"init_std": {"loguniform": [-1, 1]}}, "training.init_std.loguniform[0]", "init_std"),
    ({"init_std": 0.0}, "training.init_std", "not a valid init_std"),
    ({"dropout": 1.0}, "training.dropout", "[0, 1)"),
    ({"dropout": {"uniform": [-0.1, 0.5]}}, "training.dropout.uniform[0]", "[0, 1)"),
    ({"dropout": {"uniform": [0.0, 1.0]}}, "training.dropout.uniform[1]", "[0, 1)"),
    ({"train_fraction": {"choice": [0.5, 0]}}, "training.train_fraction.choice[1]", "(0, 1]"),
    ({"train_fraction": {"choice": [1.5]}}, "training.train_fraction.choice[0]", "(0, 1]"),
    ({"optimizer": {"choice": ["adam", "lbfgs"]}}, "training.optimizer.choice[1]", "rmsprop"),
    ({"optimizer": "sgd"}, "training.optimizer", "sgd_momentum"),
    ({"activation": {"choice": ["gelu"]}}, "training.activation.choice[0]", "tanh"),
    ({"init": {"choice": ["xavier"]}}, "training.init.choice[0]", "glorot_uniform"),
    ({"epochs": {"choice": [5, 10]}}, "training.epochs", "cannot vary"),
    ({"batch_size": {"uniform": [32, 128]}}, "training.batch_size", "cannot vary"),
    ({"optimizer": {"choice": []}}, "training.optimizer.choice", "non-empty list"),
    ({"lr": {"loguniform": [1e-3]}}, "training.lr.loguniform", "[low, high]"),
    ({"lr": {"uniform": [1e-3, 1e-2]}}, "training.lr", "cannot be uniform"),
    (
        {"weight_decay": {"loguniform": [1e-6, 1e-3], "zero_share": 1.5}},
        "training.weight_decay.zero_share",
        "[0, 1]",
    ),
    (
        {"weight_decay": {"loguniform": [1e-6, 1e-3], "zero_share": -0.1}},
        "training.weight_decay.zero_share",
        "[0, 1]",
    ),
    (
        {"lr": {"loguniform": [1e-4, 1e-1], "zero_share": 0.5}},
        "training.lr.zero_share",
        "weight_decay",
    ),
    (
        {"weight_decay": {"loguniform": [0, 1e-3]}},
        "training.weight_decay.loguniform",
        "> 0",
    ),
]


@pytest.mark.parametrize("spec, key, words", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_input_names_its_key(spec, key, words):
    with pytest.raises(HparamError) as err:
        parse_spec(spec)
    assert str(err.value).startswith(key + ":")
    assert words in str(err.value)
    assert isinstance(err.value, ValueError)


def test_errors_name_the_block_they_come_from():
    with pytest.raises(HparamError, match=r"^experiments\.dnn\.training\.lr:"):
        parse_spec({"lr": -1}, where="experiments.dnn.training")


@pytest.mark.parametrize("replicates, trial_id", [(0, 0), (1, -1), (True, 0), (2, 1.0)])
def test_bad_replicates_or_trial_id(replicates, trial_id):
    with pytest.raises(HparamError):
        sample_trial(SPEC, *ID, trial_id, replicates=replicates)


def test_importing_loads_no_torch_and_no_numpy():
    """Config validation runs while Snakemake plans: it must not pay for torch or numpy."""
    loaded = "print('torch' in sys.modules, 'numpy' in sys.modules)"
    code = f"import sys, weightzoo.train.hparams; {loaded}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
