"""The reconstruct stage's computation (weightzoo.analysis.reconstruct) on synthetic
weights with known answers, tiny trained zoos, and claim 9 on planted zoos."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from weightzoo.analysis.claims import ClaimSettings
from weightzoo.analysis.claims.reconstruct_rows import per_trial, reconstruct_rows
from weightzoo.analysis.claims.verdicts import add_verdicts
from weightzoo.analysis.reconstruct import coords, fit
from weightzoo.analysis.reconstruct.settings import ReconstructSettings
from weightzoo.analysis.reconstruct.shared import fit_shared
from weightzoo.analysis.reconstruct.summary import (
    COLUMNS,
    accuracy_curves,
    read_table,
    trial_features,
)
from weightzoo.analysis.reconstruct.table import (
    Runtime,
    rebuilt_accuracy,
    reconstruct_zoo,
    write_table,
)
from weightzoo.train.models import get_family
from weightzoo.train.settings import TrainSettings
from weightzoo.train.trainer import train_trials
from weightzoo.zoo.hdf5 import Zoo, write_zoo

DNN = get_family("dnn")
ARCH = {"widths": [16, 16]}
SHAPES = DNN.param_shapes(ARCH, (1, 4, 4), 10)  # fc1 [16, 16], fc2 [16, 16], fc3 [10, 16]
GRIDS = coords.layer_grids(DNN, ARCH, SHAPES)
SMALL = ReconstructSettings(ratios=(0.5,), claim_ratio=0.5, depth=2, levels=4, steps=1000,
                            lr=0.01, order="none")  # fmt: skip


def smooth_weights(n_trials: int, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Weights that are an exact smooth function of their coordinates (a sum of encoding
    features), a different amplitude per trial."""
    c = coords.coordinates(GRIDS)  # [R, 3]
    values = torch.sin(math.pi * c[:, 1]) + 0.5 * torch.cos(2 * math.pi * c[:, 2]) + 0.3 * c[:, 0]
    out, start = {}, 0
    for g in GRIDS:
        w = values[start : start + g.rows].reshape(g.shape)
        out[g.param] = torch.stack([w * (1 + 0.1 * t) for t in range(n_trials)]).to(dtype)
        start += g.rows
    return out


def noise_weights(n_trials: int, seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(n_trials, *s, generator=g, dtype=torch.float64) for k, s in SHAPES.items()
    }


def fitted_errors(weights, ratio, settings=SMALL, seeds=(1, 2, 3)):
    targets = fit.prepare("dnn", DNN, ARCH, weights, settings)
    mlp = fit.fit_predictors(targets, ratio, settings, seeds)
    with torch.no_grad():
        rebuilt = fit.rebuild(targets, fit.predict_rows(mlp, targets))
    return fit.relative_errors(weights, rebuilt, [g.param for g in GRIDS])[1]


def test_smooth_weights_are_reconstructed_to_near_zero_error():
    assert fitted_errors(smooth_weights(3), 0.5).max() < 0.05


def test_white_noise_at_a_small_ratio_is_not_reconstructed():
    assert fitted_errors(noise_weights(3), 0.05).min() > 0.8


@pytest.mark.parametrize("model, arch", [
    ("dnn", {"widths": [5, 7]}), ("cnn", {"channels": 3}),
    ("smallcnn", {"channels": 4, "padding": "same"}),
    ("vit", {"d_model": 8, "nhead": 2, "patch": 2, "dim_feedforward": 12}),
])  # fmt: skip
@pytest.mark.parametrize("order", ["none", "norm"])
def test_layout_and_unit_order_round_trip_exactly(model, arch, order):
    family = get_family(model)
    shapes = family.param_shapes(arch, (1, 8, 8), 10)
    g = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(3, *s, generator=g, dtype=torch.float64) for k, s in shapes.items()}
    targets = fit.prepare(model, family, arch, weights, ReconstructSettings(order=order))
    back = fit.rebuild(targets, targets.rows)
    assert targets.rows.shape[1] == targets.enc.shape[0] == targets.mask.shape[0]
    for name, w in back.items():
        torch.testing.assert_close(w, weights[name], rtol=1e-15, atol=1e-15)
    if order == "norm" and model == "dnn":  # hidden units sorted by incoming norm
        fc1 = coords.permute(weights["fc1.weight"], *targets.perms[0])
        assert (fc1.norm(dim=2).diff(dim=1) >= 0).all()


def test_fits_are_reproducible_and_do_not_depend_on_their_neighbours():
    settings = ReconstructSettings(ratios=(0.25,), claim_ratio=0.25, depth=2, levels=4,
                                   steps=40, batch_rows=64)  # fmt: skip
    weights = noise_weights(4)

    def predict(index, seeds):
        part = {k: v[index] for k, v in weights.items()}
        targets = fit.prepare("dnn", DNN, ARCH, part, settings)
        mlp = fit.fit_predictors(targets, 0.25, settings, seeds)
        with torch.no_grad():
            return fit.predict_rows(mlp, targets)

    a = predict([0, 1, 2], [10, 11, 12])
    assert torch.equal(a, predict([0, 1, 2], [10, 11, 12]))  # same seeds, same result
    b = predict([0, 3], [10, 13])  # trial 0 beside another neighbour
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-12)


def test_the_shared_representation_explains_the_group_that_shares_structure():
    common = smooth_weights(1)
    noise = noise_weights(40, seed=1)
    structured = torch.arange(40) < 20
    weights = {k: torch.where(structured.view(-1, *[1] * (v.dim() - 1)), common[k] + 0.05 * v, v)
               for k, v in noise.items() if k in common}  # the weights only  # fmt: skip
    settings = ReconstructSettings(ratios=(0.5,), claim_ratio=0.5, depth=2, levels=4, lr=0.01,
                                   order="none", shared_steps=400, shared_latent=4)  # fmt: skip
    targets = fit.prepare("dnn", DNN, ARCH, weights, settings)
    shared = fit_shared(targets, settings, "h16-16")
    with torch.no_grad():
        rebuilt = fit.rebuild(targets, fit.predict_rows(shared.predict, targets))
    errors = fit.relative_errors(weights, rebuilt, [g.param for g in GRIDS])[1].numpy()
    assert errors[:20].max() < errors[20:].min()


def claim9_verdicts(shared_error, own_error, groups, accuracy) -> pd.DataFrame:
    n = len(groups)
    arch = np.where(np.arange(n) % 2 == 0, "a", "b")
    table = pd.DataFrame({
        "experiment": "dnn_x", "arch": np.repeat(arch, 2), "trial_id": np.repeat(np.arange(n), 2),
        "group": np.repeat(groups, 2), "kind": ["shared", "own"] * n, "ratio": [np.nan, 0.1] * n,
        "layer": "network", "rel_error_fit": np.column_stack([shared_error, own_error]).ravel(),
    })  # fmt: skip
    trials = per_trial(table, 0.1)
    acc = pd.Series(accuracy, index=pd.MultiIndex.from_arrays([arch, np.arange(n)]))
    settings = ClaimSettings(permutations=999, bootstrap=199)
    exp = {"experiment": "dnn_x", "model": "dnn", "dataset": "x"}
    return add_verdicts(pd.DataFrame(reconstruct_rows(exp, trials, acc, settings)), settings)


def test_claim9_finds_a_planted_group_and_not_a_null_zoo():
    rng = np.random.default_rng(0)
    groups = np.array(["high", "low", "mid", "high"] * 15)
    accuracy = np.where(groups == "high", 0.95, 0.6) + rng.normal(0, 0.01, len(groups))
    planted = np.where(groups == "high", 0.2, 0.8) + rng.normal(0, 0.05, len(groups))
    null = rng.uniform(0.2, 0.8, len(groups))
    found = claim9_verdicts(planted, planted, groups, accuracy)
    assert (found["verdict"] == "supported").all()
    assert set(found["scope"]) == {"pooled", "within"} and set(found["claim"]) == {"9a", "9b"}
    assert (claim9_verdicts(null, null, groups, accuracy)["verdict"] != "supported").all()


@pytest.fixture
def tiny_zoo(tmp_path, digits_tensors):
    """Two DNN architectures of 4 trials each, trained 2 epochs on digits, as a zoo file."""
    data = digits_tensors(n_train=300)
    settings = TrainSettings(epochs=2, batch_size=100, init_std=0.1)
    archs = []
    for widths in ([6, 6], [10, 10]):
        arch = {"widths": widths}
        seeds = [100 + k for k in range(4)]
        result = train_trials(DNN, arch, seeds, data, settings, progress_file=None)
        archs.append(result.to_arch_trials(DNN.arch_name(arch), arch, range(4), seeds))
    write_zoo(tmp_path / "zoo.h5", Zoo("dnn_digits", "dnn", "digits", archs))
    groups = pd.DataFrame([{"arch": a.arch_name, "trial_id": k, "group": "high" if k < 2 else "low"}
                           for a in archs for k in range(4)])  # fmt: skip
    return tmp_path / "zoo.h5", groups, data, archs


def test_the_stage_table_and_true_weights_keep_the_recorded_accuracy(tiny_zoo, tmp_path):
    path, groups, data, archs = tiny_zoo
    for a in archs:  # the true weights, evaluated by the trainer's code: the recorded accuracy
        params = {k: torch.from_numpy(v) for k, v in a.final.items()}
        rt = Runtime("dnn", DNN, data, torch.float32, torch.device("cpu"))
        acc = rebuilt_accuracy(rt, params, a.arch, {})
        np.testing.assert_array_equal(acc.astype(np.float32), a.metrics["test_acc"][:, -1])
        np.testing.assert_array_equal(rebuilt_accuracy(rt, {k: v[:1] for k, v in params.items()},
                                                       a.arch, {}).astype(np.float32),
                                      a.metrics["test_acc"][:1, -1])  # fmt: skip
    settings = ReconstructSettings(ratios=(0.1, 0.5), claim_ratio=0.1, steps=5, shared_steps=5,
                                   trials_per_chunk=3, distill_steps=2)  # fmt: skip
    rt = Runtime("dnn", DNN, data, torch.float32, torch.device("cpu"))
    table = reconstruct_zoo(path, groups, rt, settings)
    assert list(table.columns) == list(COLUMNS)
    # per trial: 2 ratios + shared, each a network row and 3 layer rows
    assert len(table) == 8 * 3 * 4
    net = table[table["layer"] == "network"]
    recorded = {(a.arch_name, k): a.metrics["test_acc"][k, -1] for a in archs for k in range(4)}
    for kind in ("own", "shared"):
        part = net[(net["kind"] == kind) & (net["ratio"].isna() | (net["ratio"] == 0.1))]
        assert len(part) == 8
        expected = [recorded[key] for key in zip(part["arch"], part["trial_id"], strict=True)]
        np.testing.assert_array_equal(part["acc_original"].to_numpy(np.float32), expected)
    assert net["acc_rebuilt"].between(0, 1).all() and (net["rel_error"] > 0).all()
    # the weights' fit is recorded before the distillation moves them; the shared
    # representation is not distilled
    shared = table["kind"] == "shared"
    assert (table.loc[shared, "rel_error"] == table.loc[shared, "rel_error_fit"]).all()
    assert (table.loc[~shared, "rel_error"] != table.loc[~shared, "rel_error_fit"]).all()
    write_table(table, tmp_path / "rec.parquet")
    curves = accuracy_curves(read_table(tmp_path / "rec.parquet"))
    assert set(curves["kind"]) == {"own", "shared"} and (curves["n"] > 0).all()
    features = trial_features(table)
    assert len(features) == 8
    assert {"rec_error_r0.1", "rec_error_r0.5", "rec_shared_error"} <= set(features.columns)
    # the other distillation loss moves the same fits elsewhere; the weights' fit before
    # it is the same
    assert settings.distill_loss == "kl"
    mse = reconstruct_zoo(path, groups, rt, replace(settings, distill_loss="mse", shared_steps=0))
    own = table[table["kind"] == "own"].reset_index(drop=True)
    pd.testing.assert_series_equal(mse["rel_error_fit"], own["rel_error_fit"])
    assert (mse["rel_error"] != own["rel_error"]).all()


def test_a_table_without_the_columns_is_refused_naming_the_file(tmp_path):
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="bad.parquet: not a reconstruction table"):
        read_table(tmp_path / "bad.parquet")


def test_settings_name_the_bad_key():
    with pytest.raises(ValueError, match="reconstruct: unknown key"):
        ReconstructSettings.from_config({"ratio": [0.1]})
    with pytest.raises(ValueError, match="reconstruct.claim_ratio"):
        ReconstructSettings.from_config({"ratios": [0.5], "claim_ratio": 0.1})
    with pytest.raises(ValueError, match="reconstruct.order"):
        ReconstructSettings.from_config({"order": "tsp"})
    with pytest.raises(ValueError, match="reconstruct.distill_loss: one of"):
        ReconstructSettings.from_config({"distill_loss": "ce"})


def test_distillation_losses_have_their_known_values():
    """Per trial: ``mse`` of the logits; ``kl`` of their softmax, which ignores a constant
    added to a trial's logits and equals sum p (log p - log q) averaged over images."""
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)  # [T, b, classes]
    student = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    for kind in ("mse", "kl"):
        assert torch.equal(
            fit.distillation_loss(teacher, teacher, kind), torch.zeros(3, dtype=teacher.dtype)
        )
    shifted = teacher + torch.tensor([1.0, -2.0, 3.0], dtype=teacher.dtype).view(3, 1, 1)
    torch.testing.assert_close(
        fit.distillation_loss(shifted, teacher, "kl"), torch.zeros(3, dtype=teacher.dtype)
    )
    torch.testing.assert_close(fit.distillation_loss(shifted, teacher, "mse"),
                               torch.tensor([1.0, 4.0, 9.0], dtype=teacher.dtype))  # fmt: skip
    p, q = teacher.softmax(-1), student.softmax(-1)
    expected = (p * (p.log() - q.log())).sum(-1).mean(-1)  # [T]
    torch.testing.assert_close(fit.distillation_loss(student, teacher, "kl"), expected)


def test_an_imported_experiment_is_not_reconstructed_and_naming_it_is_refused():
    """An imported zoo (``source:``) has no forward pass to rebuild its trials with."""
    from weightzoo.config import ConfigError, validate_config

    source = {"source": {"format": "checkpoints", "path": "imports/mlp"}, "bands": {
        "low": [20, 60], "mid": [60, 85], "high": [90, 100]}}  # fmt: skip
    config = {"experiments": {"mlp": source}}
    assert validate_config(config)["reconstruct"]["experiments"] == []
    with pytest.raises(ConfigError, match=r"reconstruct.experiments: \['mlp'\] are imported"):
        validate_config({**config, "reconstruct": {"experiments": ["mlp"]}})


def test_fitting_in_groups_of_trials_gives_the_same_fits(monkeypatch):
    """On the CPU a step runs forward and backward over groups of trials (fit.CPU_STEP_ROWS
    coordinates each), then one Adam step: the same fits as the whole chunk at once."""
    settings = ReconstructSettings(ratios=(0.25,), claim_ratio=0.25, depth=2, levels=4,
                                   steps=30, batch_rows=64)  # fmt: skip
    targets = fit.prepare("dnn", DNN, ARCH, noise_weights(5), settings)

    def predict():
        mlp = fit.fit_predictors(targets, 0.25, settings, [1, 2, 3, 4, 5])
        with torch.no_grad():
            return fit.predict_rows(mlp, targets)

    whole = predict()
    monkeypatch.setattr(fit, "CPU_STEP_ROWS", 128)  # groups of 2, 2 and 1 trials
    assert fit.trial_groups(targets, 64) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    torch.testing.assert_close(predict(), whole, rtol=0, atol=1e-12)


def test_a_sample_per_group_keeps_at_most_the_count_of_each_group_reproducibly():
    from types import SimpleNamespace

    from weightzoo.analysis.reconstruct.table import sample_per_group

    ids = np.arange(100, 130)
    arch = SimpleNamespace(arch_name="a", n_trials=30, trials={"trial_id": ids})
    labels = ["high"] * 12 + ["low"] * 3 + ["mid"] * 15
    groups = pd.DataFrame({"arch": "a", "trial_id": ids, "group": labels})
    index = np.arange(30)
    every = sample_per_group(index, arch, groups, ReconstructSettings())
    np.testing.assert_array_equal(every, index)
    settings = ReconstructSettings(trials_per_group=5)
    kept = sample_per_group(index, arch, groups, settings)
    counts = pd.Series(np.asarray(labels)[kept]).value_counts().to_dict()
    assert counts == {"high": 5, "low": 3, "mid": 5}
    assert list(kept) == sorted(kept)
    np.testing.assert_array_equal(kept, sample_per_group(index, arch, groups, settings))
    with pytest.raises(ValueError, match="reconstruct.trials_per_group"):
        ReconstructSettings.from_config({"trials_per_group": -1})
