"""WeightWatcher's per-layer spectral columns, computed on stacked trials.

WeightWatcher (Martin & Mahoney; the ``weightwatcher`` package, 0.7.7) fits a power law
to the eigenvalues of ``Wᵀ W`` (the squared singular values of ``W``) of each layer. Its
``analyze()`` runs one SVD per layer per module; here the eigenvalues of a whole chunk of
trials come from one batched ``torch.linalg.eigvalsh`` of their Gram matrices, and each
spectrum goes through WeightWatcher's own fit (``weightwatcher.WW_powerlaw.pl_fit``,
its default ``pl_package="ww"``, xmin chosen by the minimum KS distance), called exactly
as ``WeightWatcher.fit_powerlaw`` calls it. ``tests/test_spectral.py`` checks that the
columns equal ``WeightWatcher().analyze()`` on the same modules.

Columns (:data:`SPECTRAL_COLUMNS`), per trial, layer and state, with λ the eigenvalues:

* ``ww_alpha``: the power-law exponent; ``ww_D``: the fit's KS distance;
* ``ww_alpha_weighted``: alpha · log10 λ_max;
* ``ww_log_norm``: log10 Σλ (= log10 ‖W‖²_F); ``ww_log_spectral_norm``: log10 λ_max;
* ``ww_stable_rank``: Σλ / λ_max;
* ``ww_n_evals``: how many eigenvalues; ``ww_status``: ``success`` / ``failed`` (WW's),
  ``too_few_evals`` (fewer than :data:`MIN_EVALS`: no fit), ``off`` (not computed),
  ``nonfinite`` (non-finite weights); ``ww_warning``: WW's ``over-trained`` (alpha < 2) /
  ``under-trained`` (alpha > 6) / empty;
* ``ww_unreliable``: True unless the fit succeeded on >= :data:`MIN_EVALS` eigenvalues
  (WeightWatcher's advice for a meaningful fit). alpha, D and alpha_weighted are NaN
  there; the norms stay (they need no fit).

Conv kernels ``[C, Cin, k, k]`` follow WeightWatcher (``pool=True``, ``conv2d_norm``): the
``k·k`` slices ``W[:, :, i, j]`` are separate ``[C, Cin]`` matrices, each scaled by
``sqrt(1/2)`` (WW 0.7.7's ``conv2d_norm`` on pooled slices), and their eigenvalues are
pooled into one spectrum: a 3x3 conv from 1 input channel has 9 eigenvalues; a 1-D or 3-D
kernel of an imported zoo is sliced per kernel position the same way. (The features
table's own ``fro_norm`` / ``stable_rank`` reshape to ``[C, Cin·k·k]`` instead.)
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import TYPE_CHECKING

import numpy as np

from ..train.shapes import LayerInfo

if TYPE_CHECKING:  # imported where used: readers of the columns need no torch
    import torch

MIN_EVALS = 50  # WeightWatcher's advice: fewer eigenvalues give no meaningful power law
EVALS_THRESH = 1e-5  # weightwatcher.constants.EVALS_THRESH: the fit ignores smaller ones
OVER_TRAINED_THRESH, UNDER_TRAINED_THRESH = 2.0, 6.0  # weightwatcher.constants
VALUE_COLUMNS = (
    "ww_alpha",
    "ww_D",
    "ww_alpha_weighted",
    "ww_log_norm",
    "ww_log_spectral_norm",
    "ww_stable_rank",
)
FLAG_COLUMNS = ("ww_n_evals", "ww_status", "ww_warning", "ww_unreliable")
SPECTRAL_COLUMNS = (*VALUE_COLUMNS, *FLAG_COLUMNS)
FIT_COLUMNS = ("ww_alpha", "ww_D", "ww_alpha_weighted")  # NaN where ww_unreliable


def ww_matrices(w: np.ndarray, layer: LayerInfo) -> torch.Tensor:
    """``[t, s, out, in]`` float64: the matrices WeightWatcher analyses for each trial of
    ``w [t, *shape]``; s = 1 for a 2-D weight, k·k scaled slices for a conv kernel."""
    import torch

    mats = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float64))
    if mats.ndim == 3:  # [t, out, in]
        return mats.unsqueeze(1)
    if mats.ndim >= 4:  # [t, C, Cin, *kernel] -> [t, prod(kernel), C, Cin]
        t, c, cin = mats.shape[:3]
        kernel_axes = tuple(range(3, mats.ndim))
        slices = mats.permute(0, *kernel_axes, 1, 2).reshape(t, -1, c, cin)
        # WW's conv2d_norm, sqrt(conv2d_count / 2), with conv2d_count = 1 on its pooled
        # slices (weightwatcher 0.7.7; tests/test_spectral.py compares); a 1-D or 3-D
        # kernel (an imported zoo's Conv1d / Conv3d) is sliced the same way
        return slices * np.sqrt(0.5)
    raise ValueError(
        f"layer {layer.label} ({layer.param}): weights of shape {tuple(w.shape[1:])} are "
        "not a matrix nor a conv kernel; WeightWatcher has no spectrum for them"
    )


def eigenvalues(w: np.ndarray, layer: LayerInfo) -> np.ndarray:
    """``[t, n]`` eigenvalues of ``Wᵀ W`` per trial (pooled over conv slices), ascending.

    One batched ``eigvalsh`` of the Gram matrix of the shorter side: the squared singular
    values WeightWatcher gets from its SVD."""
    import torch

    mats = ww_matrices(w, layer)  # [t, s, out, in]
    gram = mats @ mats.mT if mats.shape[2] <= mats.shape[3] else mats.mT @ mats  # [t, s, m, m]
    evals = torch.linalg.eigvalsh(gram).clamp(min=0).flatten(1)  # [t, s*m]
    return np.sort(evals.numpy(), axis=1)


def _ww_fit(evals: np.ndarray):
    """WeightWatcher's default power-law fit (``fit_powerlaw`` with xmin, xmax unset)."""
    nz = evals[evals > EVALS_THRESH]
    # its import prints which SVD it found, WWFit prints "SMALL N PL FIT": keep logs clean
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from weightwatcher.WW_powerlaw import pl_fit

        logging.getLogger("weightwatcher").setLevel(logging.WARNING)
        return pl_fit(data=nz, xmax=None, verbose=False, distribution="power_law")


def fit_spectrum(evals: np.ndarray) -> tuple[float, float, str, str]:
    """``(alpha, D, status, warning)`` of one ascending spectrum, as WeightWatcher gives
    them (alpha, D NaN where the fit failed)."""
    try:
        fit = _ww_fit(evals)
    except Exception:  # WeightWatcher catches every fit error as "failed" too
        return np.nan, np.nan, "failed", ""
    alpha = fit.alpha
    if alpha is None or not np.isfinite(alpha):
        return np.nan, np.nan, "failed", ""
    warning = ""
    if alpha < OVER_TRAINED_THRESH:
        warning = "over-trained"
    elif alpha > UNDER_TRAINED_THRESH:
        warning = "under-trained"
    return float(alpha), float(fit.D), "success", warning


def spectral_features(
    w: np.ndarray, layer: LayerInfo, min_evals: int = MIN_EVALS
) -> dict[str, np.ndarray]:
    """:data:`SPECTRAL_COLUMNS` ``{column: [t]}`` of finite weights ``w [t, *shape]``."""
    evals = eigenvalues(w, layer)  # [t, n]
    t, n = evals.shape
    total, top = evals.sum(axis=1), evals[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):  # all-zero matrix
        out = {
            "ww_log_norm": np.log10(total),
            "ww_log_spectral_norm": np.log10(top),
            "ww_stable_rank": total / top,
        }
    alpha, D = np.full(t, np.nan), np.full(t, np.nan)
    status = np.full(t, "too_few_evals" if n < min_evals else "failed", dtype=object)
    warning = np.full(t, "", dtype=object)
    if n >= min_evals:  # small layers: no fit, only the flag (the demo's are mostly small)
        for i in range(t):
            alpha[i], D[i], status[i], warning[i] = fit_spectrum(evals[i])
    out.update(
        ww_alpha=alpha,
        ww_D=D,
        ww_alpha_weighted=alpha * out["ww_log_spectral_norm"],
        ww_n_evals=np.full(t, n, dtype=np.int64),
        ww_status=status,
        ww_warning=warning,
        ww_unreliable=status != "success",
    )
    return out


def empty_spectral(t: int, status: str) -> dict[str, np.ndarray]:
    """Spectral columns of ``t`` trials that were not computed (``off`` / ``nonfinite``)."""
    out = {c: np.full(t, np.nan) for c in VALUE_COLUMNS}
    out.update(
        ww_n_evals=np.full(t, -1, dtype=np.int64),
        ww_status=np.full(t, status, dtype=object),
        ww_warning=np.full(t, "", dtype=object),
        ww_unreliable=np.ones(t, dtype=bool),
    )
    return out


def masked_spectral_features(
    w: np.ndarray, finite: np.ndarray, layer: LayerInfo, min_evals: int = MIN_EVALS
) -> dict[str, np.ndarray]:
    """:func:`spectral_features` of the trials where ``finite [t]``; ``nonfinite`` rows
    for the others."""
    out = empty_spectral(len(w), "nonfinite")
    if finite.any():
        for c, values in spectral_features(w[finite], layer, min_evals).items():
            out[c][finite] = values
    return out
