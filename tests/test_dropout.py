"""TrialDropout's stacked call: one buffer of draws, the keep test and the scaling over all
trials at once, and still the bits of drawing each trial's mask on its own."""

from __future__ import annotations

import pytest
import torch

from weightzoo.train.dropout import MASK_DRAW_DTYPE, TrialDropout

# float64 rates as the trainer gives them, none of them a float32; zeros between droppers
RATES = [0.0, 0.25, 0.7, 0.0, 0.1, 0.55, 0.3333333333333333]
INT_OF = {torch.float32: torch.int32, torch.float64: torch.int64}
SHAPES = [(40, 13), (6, 3, 5, 5)]  # one trial's activations: [B, F] and [B, C, H, W]


def generators(n: int, seed: int = 50) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + t) for t in range(n)]


def per_trial_reference(h: torch.Tensor, rates, gens) -> torch.Tensor:
    """The stacked call as it was before the shared buffer: each trial's mask drawn into a
    fresh tensor, kept where ``u >= p`` (p a Python float: compared in float32), scaled by
    ``1/(1-p)``, the masks stacked (1 for ``p = 0``, nothing drawn), then one multiply."""
    masks = []
    for p, g in zip(rates, gens, strict=True):
        p = float(p)
        if p == 0.0:
            masks.append(torch.ones((), dtype=h.dtype).expand(h.shape[1:]))
            continue
        u = torch.rand(h.shape[1:], generator=g, dtype=MASK_DRAW_DTYPE)  # [B, ...]
        keep = u.ge_(p) if h.dtype == MASK_DRAW_DTYPE else (u >= p).to(h.dtype)
        masks.append(keep.mul_(1.0 / (1.0 - p)))
    return h * torch.stack(masks)  # [T, B, ...]


def assert_same_bits(a: torch.Tensor, b: torch.Tensor) -> None:
    """Equal to the bit, -0.0 and +0.0 told apart (torch.equal holds them equal)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a.view(INT_OF[a.dtype]), b.view(INT_OF[b.dtype]))


def activations(shape, dtype, seed=1) -> torch.Tensor:
    """``[T, *shape]`` of both signs (a dropped negative unit is -0.0)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(RATES), *shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=["dense", "conv"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_stacked_call_gives_the_bits_and_generator_states_of_per_trial_draws(dtype, shape):
    h = activations(shape, dtype).requires_grad_(True)  # [T, *shape]
    ref_h = h.detach().clone().requires_grad_(True)
    dropout = TrialDropout(torch.tensor(RATES, dtype=torch.float64), generators(len(RATES)))
    ref_gens = generators(len(RATES))
    for site in range(3):  # each call continues the generators where the last one left them
        out = dropout(h)
        ref = per_trial_reference(ref_h, RATES, ref_gens)
        assert_same_bits(out, ref)
        out.sum().backward()
        ref.sum().backward()
        assert_same_bits(h.grad, ref_h.grad)
        for t, (g, ref_g) in enumerate(zip(dropout.generators, ref_gens, strict=True)):
            assert torch.equal(g.get_state(), ref_g.get_state()), (site, t)
    untouched = generators(len(RATES))
    for t, p in enumerate(RATES):
        advanced = not torch.equal(dropout.generators[t].get_state(), untouched[t].get_state())
        assert advanced == (p > 0), t  # a p = 0 trial draws nothing


def test_a_rate_that_rounds_to_a_drawn_uniform_keeps_that_unit_as_before():
    """The keep test compares in float32 (today's ``u >= p`` with a Python float): a rate just
    above a drawn u whose float32 is that u keeps the unit; a float64 test would drop it."""
    u = torch.rand(50, generator=torch.Generator().manual_seed(9), dtype=MASK_DRAW_DTYPE)
    i = 17
    p = float(u[i].double()) + 2.0**-40  # rounds to u[i] in float32, above it in float64
    assert torch.tensor(p, dtype=MASK_DRAW_DTYPE) == u[i] and p > float(u[i])
    for dtype in (torch.float32, torch.float64):
        h = torch.ones(2, 50, dtype=dtype)  # [T, B]
        rates = torch.tensor([0.0, p], dtype=torch.float64)
        out = TrialDropout(rates, generators(2, seed=8))(h)  # trial 1 draws from seed 9
        ref = per_trial_reference(h, [0.0, p], generators(2, seed=8))
        assert_same_bits(out, ref)
        assert out[1, i] != 0, dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_one_trial_alone_gives_the_bits_of_its_row_of_the_stacked_call(dtype):
    h = activations(SHAPES[1], dtype, seed=2)  # [T, B, C, H, W]
    rates = torch.tensor(RATES, dtype=torch.float64)
    stacked = TrialDropout(rates, generators(len(RATES)))
    alone = TrialDropout(rates, generators(len(RATES)))
    for _site in range(2):  # the second call continues each trial's generator
        out = stacked(h)
        for t in range(len(RATES)):
            assert_same_bits(out[t], alone.trial(h[t], t))


def test_no_dropping_trial_returns_the_activations_and_draws_nothing():
    h = activations(SHAPES[0], torch.float32)
    dropout = TrialDropout(torch.zeros(len(RATES), dtype=torch.float64), generators(len(RATES)))
    assert dropout(h) is h
    for g, fresh in zip(dropout.generators, generators(len(RATES)), strict=True):
        assert torch.equal(g.get_state(), fresh.get_state())
