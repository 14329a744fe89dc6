"""Per-trial dropout for the batched models: each trial's masks come from its own generator.

A trial must train to the same bits alone or in any ensemble (weightzoo.train.trainer), so a
dropout mask cannot come from one draw over the stacked ``[T, B, ...]`` activations: which
numbers trial ``t`` got would then depend on the trials before it. :class:`TrialDropout`
draws trial ``t``'s mask from generator ``t`` only, on the CPU, one draw per trial per call,
so the masks a trial sees depend on its own generator and on the order of the dropout sites
in the forward (fixed by the model), nothing else.

Inverted dropout: an element is kept with probability ``1 - p`` and a kept one is scaled by
``1 / (1 - p)``, so evaluation (which passes no dropout) needs no rescaling. A trial with
``p = 0`` draws nothing and returns its activations unchanged, the bits of no dropout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

# the uniforms are drawn in one dtype whatever the training dtype, so a float32 and a float64
# run of a trial draw the same numbers (float32: half the generator work of float64); give
# the rates as float64 and the two runs drop the same units too
MASK_DRAW_DTYPE = torch.float32


class TrialDropout:
    """Dropout with rate ``rates[t]`` for trial ``t``, its masks drawn from ``generators[t]``.

    ``rates``: ``[T]`` floats in ``[0, 1)``; ``generators``: one CPU ``torch.Generator`` per
    trial (the trainer seeds each from its trial's seed). Call it on stacked activations
    (``dropout(h)``, ``h [T, B, ...]``) or on one trial's (``dropout.trial(h, t)``,
    ``h [B, ...]``, for forwards that run the trials one at a time); both draw trial ``t``'s
    mask the same way, so the two give the same bits.
    """

    def __init__(self, rates: Tensor | Sequence[float], generators: Sequence[torch.Generator]):
        rates = torch.as_tensor(rates, dtype=torch.float64).cpu()  # [T]
        if rates.ndim != 1 or len(rates) != len(generators):
            raise ValueError(
                f"training.dropout: {tuple(rates.shape)} rates for {len(generators)} trials; "
                "give one rate and one generator per trial"
            )
        bad = ~((rates >= 0) & (rates < 1))
        if bad.any():
            t = int(bad.nonzero()[0])
            raise ValueError(
                f"training.dropout: trial {t} has rate {float(rates[t])!r}; give a rate in [0, 1)"
            )
        for t, g in enumerate(generators):
            if g.device.type != "cpu":
                raise ValueError(
                    f"training.dropout: trial {t}'s generator is on {g.device}; "
                    "masks are drawn on the CPU, give a CPU generator"
                )
        self.rates = rates
        self.generators = list(generators)
        # what the stacked call needs of the rates, fixed for the dropout's life
        self._dropping = (rates > 0).nonzero().flatten().tolist()  # trial indices
        self._not_dropping = (rates == 0).nonzero().flatten()  # [T0] trial indices
        self._draw_rates = rates.to(MASK_DRAW_DTYPE)  # [T]: p compared as the draws' dtype
        self._scales = 1.0 / (1.0 - rates)  # [T] float64: a kept unit's 1/(1-p)

    @property
    def n_trials(self) -> int:
        return len(self.generators)

    @property
    def active(self) -> bool:
        """Whether any trial drops anything (a zero-rate dropout changes no bits)."""
        return bool((self.rates > 0).any())

    def _mask(self, t: int, shape: torch.Size, dtype: torch.dtype) -> Tensor | None:
        """Trial ``t``'s scaled keep mask of ``shape`` on the CPU (0 or ``1/(1-p)`` in
        ``dtype``), or None for ``p = 0`` (nothing drawn)."""
        p = float(self.rates[t])
        if p == 0.0:
            return None
        u = torch.rand(shape, generator=self.generators[t], dtype=MASK_DRAW_DTYPE)
        # P(u >= p) = 1 - p for u uniform in [0, 1); in place where the dtypes agree
        keep = u.ge_(p) if dtype == MASK_DRAW_DTYPE else (u >= p).to(dtype)
        return keep.mul_(1.0 / (1.0 - p))

    def trial(self, h: Tensor, t: int) -> Tensor:
        """Dropout on trial ``t``'s activations ``h [B, ...]`` -> ``[B, ...]``."""
        mask = self._mask(t, h.shape, h.dtype)
        return h if mask is None else h * mask.to(h.device)

    def __call__(self, h: Tensor) -> Tensor:
        """Dropout on stacked activations ``h [T, B, ...]`` -> ``[T, B, ...]``: the uniforms
        drawn trial by trial into one buffer, each from its own generator, then the keep
        test and the scaling over all trials at once, then one multiply. Trial ``t``'s
        result is the bits of :meth:`trial` on ``h[t]``."""
        if h.shape[0] != self.n_trials:
            raise ValueError(
                f"dropout for {self.n_trials} trials got activations of {h.shape[0]} trials"
            )
        if not self._dropping:
            return h
        mask = self._stacked_mask(h.shape[1:], h.dtype)  # [T, B, ...]
        # x * 1.0 is x exactly, so a p = 0 trial keeps its bits beside dropping ones
        return h * mask.to(h.device)  # [T, B, ...]

    def _stacked_mask(self, shape: torch.Size, dtype: torch.dtype) -> Tensor:
        """Every trial's scaled keep mask of ``shape`` at once, ``[T, *shape]`` on the CPU in
        ``dtype``: row ``t`` the bits of ``_mask(t, shape, dtype)``, or all 1 for ``p = 0``."""
        u = self._draw_uniforms(shape)  # [T, *shape] in MASK_DRAW_DTYPE
        per_trial = (self.n_trials,) + (1,) * len(shape)
        rates = self._draw_rates.view(per_trial)  # [T, 1, ...]
        scales = self._scales_in(dtype).view(per_trial)  # [T, 1, ...]
        # P(u >= p) = 1 - p for u uniform in [0, 1); a p = 0 row (u = 0) keeps everything
        if dtype == MASK_DRAW_DTYPE:
            return u.ge_(rates).mul_(scales)  # [T, *shape], in place
        return (u >= rates).to(dtype).mul_(scales)  # [T, *shape]

    def _draw_uniforms(self, shape: torch.Size) -> Tensor:
        """``[T, *shape]`` uniforms in ``MASK_DRAW_DTYPE``: row ``t`` drawn from generator ``t``
        (the numbers ``_mask`` draws) for the trials that drop; 0 for ``p = 0`` trials, whose
        generators are left as they are."""
        u = torch.empty((self.n_trials, *shape), dtype=MASK_DRAW_DTYPE)  # [T, *shape]
        for t in self._dropping:
            torch.rand(shape, generator=self.generators[t], dtype=MASK_DRAW_DTYPE, out=u[t])
        if len(self._not_dropping):
            u.index_fill_(0, self._not_dropping, 0.0)
        return u

    def _scales_in(self, dtype: torch.dtype) -> Tensor:
        """``[T]`` factors ``1/(1-p)`` in ``dtype``, rounded as ``_mask``'s multiply by the
        Python float rounds them: directly in float64, through float32 in any other dtype
        (torch multiplies those by a scalar in float32)."""
        if dtype == torch.float64:
            return self._scales
        return self._scales.to(torch.float32).to(dtype)

    def __repr__(self) -> str:
        return f"TrialDropout(rates={self.rates.tolist()})"


def check_no_dropout(dropout: TrialDropout | None, model: str) -> None:
    """For a model without dropout sites: refuse any positive rate, naming the setting."""
    if dropout is not None and dropout.active:
        raise ValueError(
            f"training.dropout: the {model} has no dropout; set training.dropout to 0 "
            f"for the {model} experiments (rates given: {dropout.rates.tolist()})"
        )
