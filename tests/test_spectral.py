"""WeightWatcher's spectral columns computed on stacked trials equal WeightWatcher's own
``analyze()`` on each trial's module (weightzoo.analysis.spectral)."""

import contextlib
import io
import logging

import numpy as np
import pytest
import torch
from torch import nn

from weightzoo.analysis.spectral import (
    FIT_COLUMNS,
    MIN_EVALS,
    SPECTRAL_COLUMNS,
    VALUE_COLUMNS,
    eigenvalues,
    empty_spectral,
    masked_spectral_features,
    spectral_features,
)
from weightzoo.train.models import LayerInfo, get_family, trial_state_dict

ww = pytest.importorskip("weightwatcher")
WW_NAMES = {c: c.removeprefix("ww_") for c in VALUE_COLUMNS}
RTOL = 1e-6  # eigvalsh of the Gram matrix vs WW's SVD, both in float64


def ww_details(module: nn.Module):
    """WeightWatcher's per-layer table of ``module``, every layer fitted (min_evals=0)."""
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        return ww.WeightWatcher(model=module).analyze(min_evals=0).set_index("name")


def heavy_tailed(rng, t, shape):
    """Student-t weights: spectra with a power-law tail, alpha in WW's usual range."""
    return (0.05 * rng.standard_t(3, size=(t, *shape))).astype(np.float32)


def test_dnn_columns_equal_weightwatcher_on_the_reference_modules():
    family, arch = get_family("dnn"), {"widths": [64, 80]}
    shapes = family.param_shapes(arch, (1, 8, 8), 10)
    rng = np.random.default_rng(0)
    stacked = {name: heavy_tailed(rng, 3, shape) for name, shape in shapes.items()}
    layers = family.layers(arch)
    ours = {li.label: spectral_features(stacked[li.param], li) for li in layers}
    params = {k: torch.from_numpy(v) for k, v in stacked.items()}
    for k in range(3):
        module = family.reference_module(arch, (1, 8, 8), 10)
        module.load_state_dict(trial_state_dict(params, k))
        theirs = ww_details(module)
        for li in layers:
            row, mine = theirs.loc[li.param.removesuffix(".weight")], ours[li.label]
            assert mine["ww_n_evals"][k] == row["num_evals"]
            for col in ("ww_log_norm", "ww_log_spectral_norm", "ww_stable_rank"):
                assert mine[col][k] == pytest.approx(row[WW_NAMES[col]], rel=RTOL), col
            if row["num_evals"] < MIN_EVALS:  # FC3: 10 eigenvalues, flagged, not fitted
                assert mine["ww_status"][k] == "too_few_evals" and mine["ww_unreliable"][k]
                assert all(np.isnan(mine[c][k]) for c in FIT_COLUMNS)
                continue
            assert mine["ww_status"][k] == row["status"] == "success"
            assert mine["ww_warning"][k] == row["warning"]
            assert not mine["ww_unreliable"][k]
            for col in FIT_COLUMNS:
                assert mine[col][k] == pytest.approx(row[WW_NAMES[col]], rel=RTOL), col
    assert [ours[li.label]["ww_n_evals"][0] for li in layers] == [64, 64, 10]


class OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(16, 32, 3)


def test_conv_kernels_follow_weightwatchers_slices():
    """[C, Cin, 3, 3] -> nine scaled [C, Cin] slices, pooled: 9 x 16 = 144 eigenvalues."""
    rng = np.random.default_rng(1)
    w = heavy_tailed(rng, 2, (32, 16, 3, 3))
    layer = LayerInfo("conv.weight", "Conv", (1, 2, 3))
    mine = spectral_features(w, layer)
    assert list(mine["ww_n_evals"]) == [144, 144]
    for k in range(2):
        module = OneConv()
        module.conv.weight.data = torch.from_numpy(w[k])
        row = ww_details(module).loc["conv"]
        for col in VALUE_COLUMNS:
            assert mine[col][k] == pytest.approx(row[WW_NAMES[col]], rel=RTOL), col


def test_eigenvalues_are_the_squared_singular_values():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 30, 70))
    layer = LayerInfo("fc.weight", "FC", (1,))
    expected = np.sort(np.linalg.svd(w, compute_uv=False) ** 2, axis=1)
    np.testing.assert_allclose(eigenvalues(w, layer), expected, rtol=1e-9, atol=1e-12)


def test_small_layers_are_flagged_without_a_fit_and_keep_their_norms():
    w = np.random.default_rng(3).normal(size=(5, 10, 64))
    out = spectral_features(w, LayerInfo("fc.weight", "FC", (1,)))
    assert set(out) == set(SPECTRAL_COLUMNS)
    assert (out["ww_status"] == "too_few_evals").all() and out["ww_unreliable"].all()
    assert np.isnan(out["ww_alpha"]).all() and np.isfinite(out["ww_log_norm"]).all()
    # log10 Σλ = log10 ‖W‖²_F
    np.testing.assert_allclose(out["ww_log_norm"], np.log10((w**2).sum(axis=(1, 2))))


def test_nonfinite_trials_keep_a_flagged_row_and_off_means_not_computed():
    w = np.random.default_rng(4).normal(size=(3, 60, 60))
    w[1, 0, 0] = np.nan
    finite = np.isfinite(w).all(axis=(1, 2))
    out = masked_spectral_features(w, finite, LayerInfo("fc.weight", "FC", (1,)))
    assert list(out["ww_status"]) == ["success", "nonfinite", "success"]
    assert list(out["ww_unreliable"]) == [False, True, False]
    assert np.isnan(out["ww_alpha"][1]) and np.isfinite(out["ww_alpha"][[0, 2]]).all()
    off = empty_spectral(2, "off")
    assert list(off["ww_status"]) == ["off", "off"] and np.isnan(off["ww_alpha"]).all()
