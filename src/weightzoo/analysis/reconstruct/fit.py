"""Fitting predictors to a chunk of trials of one architecture, batched.

:func:`prepare` lays out the trials' weights as standardised targets (each layer divided
by its own std, so layers of every scale count alike) with their encoded coordinates;
:func:`fit_predictors` fits one predictor per trial (reconstruction: MSE, or NeRN's
|w|-weighted MSE); :func:`distill` optionally goes on with Choi et al.'s decoupled second
phase (the rebuilt network's logits against the original's on training images);
:func:`rebuild` turns predictions back into weights in the family's layout and order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ...train.models import ModelFamily
from . import coords
from .predictor import StackedMLP, cosine_lr, generators, hidden_for_budget, mlp_sizes
from .settings import ReconstructSettings

PREDICT_ROWS = 65536  # coordinates per prediction chunk (bounds the memory of predicting)
# On the CPU, a fitting step runs its forward and backward over groups of trials of at most
# this many coordinates in all, then one Adam step for all: a whole chunk's activations
# ([100 trials, 4096 rows, width]) overflow the caches and made the batched fit slower than
# one trial at a time (benchmarks/bench_reconstruct.py). A trial's gradient is its own
# either way. On a GPU the whole chunk is one group.
CPU_STEP_ROWS = 16384


@dataclass
class Targets:
    """One chunk's weights as the predictors see them."""

    family_name: str
    grids: list[coords.LayerGrid]
    rows: Tensor  # [T, R, g] standardised targets, units in fitting order
    mask: Tensor  # [R, g] 1 where a value is a weight, 0 for padding
    scales: Tensor  # [T, L] each layer's std (its targets were divided by it)
    enc: Tensor  # [R, d] encoded coordinates
    perms: list  # per layer (out_perm [T, out], in_perm [T, in])
    offsets: list[int]  # first row of each layer, and R at the end

    @property
    def n_trials(self) -> int:
        return self.rows.shape[0]

    @property
    def n_weights(self) -> int:
        """The represented weights of one trial (what a compression ratio divides by)."""
        return sum(g.n_weights for g in self.grids)


def prepare(
    family_name: str,
    family: ModelFamily,
    arch: Mapping,
    weights: Mapping[str, Tensor],
    settings: ReconstructSettings,
) -> Targets:
    """``weights``: the trials' parameters ``{name: [T, *shape]}`` (at least the family's
    analysed layers), on the device and in the dtype the fit runs in."""
    shapes = {name: tuple(w.shape[1:]) for name, w in weights.items()}
    grids = coords.layer_grids(family, arch, shapes)
    layer_weights = [weights[g.param] for g in grids]
    perms = coords.unit_orders(family_name, grids, [w.cpu() for w in layer_weights], settings.order)
    rows, scales = [], []
    for g, w, (p_out, p_in) in zip(grids, layer_weights, perms, strict=True):
        scale = w.flatten(1).std(dim=1).clamp_min(torch.finfo(w.dtype).tiny)  # [T]
        scaled = w / scale.view(-1, *[1] * (w.dim() - 1))
        rows.append(coords.to_rows(coords.permute(scaled, p_out, p_in), g))  # [T, rows, g]
        scales.append(scale)
    device, dtype = layer_weights[0].device, layer_weights[0].dtype
    enc = coords.encode(coords.coordinates(grids), settings.levels)  # [R, d]
    offsets = [0]
    for g in grids:
        offsets.append(offsets[-1] + g.rows)
    return Targets(
        family_name,
        grids,
        torch.cat(rows, dim=1),
        torch.cat([coords.row_mask(g) for g in grids]).to(dtype).to(device),
        torch.stack(scales, dim=1),
        enc.to(dtype).to(device),  # cast on the CPU first: Apple MPS has no float64
        perms,
        offsets,
    )


def predictor_sizes(targets: Targets, ratio: float, depth: int) -> list[int]:
    """The MLP of a compression ratio: predictor parameters <= ratio * represented weights."""
    d_in, d_out = targets.enc.shape[1], targets.rows.shape[2]
    hidden = hidden_for_budget(ratio * targets.n_weights, d_in, depth, d_out)
    return mlp_sizes(d_in, hidden, depth, d_out)


def loss_weights(targets: Targets, magnitude_weighted: bool) -> Tensor:
    """``[T, R, g]``: 0 on padding; NeRN's |w| weighting (mean 1 per trial) if asked."""
    mask = targets.mask.expand_as(targets.rows)  # [T, R, g]
    if not magnitude_weighted:
        return mask
    w = targets.rows.abs() * mask
    return w / (w.sum(dim=(1, 2), keepdim=True) / mask.sum(dim=(1, 2), keepdim=True))


def fit_predictors(
    targets: Targets, ratio: float, settings: ReconstructSettings, seeds: Sequence[int]
) -> StackedMLP:
    """One predictor per trial, fitted together (``seeds``: the trials' own seeds)."""
    sizes = predictor_sizes(targets, ratio, settings.depth)
    stream = f"reconstruct/{settings.seed}/{ratio!r}"
    mlp = StackedMLP(sizes, generators(seeds, stream + "/init"), targets.rows.dtype,
                     targets.rows.device)  # fmt: skip
    batches = generators(seeds, stream + "/rows")
    weights = loss_weights(targets, settings.magnitude_weighted)  # [T, R, g]
    optimizer = torch.optim.Adam(mlp.parameters(), lr=settings.lr)
    groups = trial_groups(targets, settings.batch_rows)
    for step in range(settings.steps):
        cosine_lr(optimizer, settings.lr, step, settings.steps)
        optimizer.zero_grad(set_to_none=True)
        for part in groups:
            x, y, w = _batch(targets, weights, batches, settings.batch_rows, part)
            err = (mlp(x, part) - y).square() * w  # [t, b, g]
            loss = err.sum(dim=(1, 2)) / w.sum(dim=(1, 2)).clamp_min(1)  # [t]
            loss.sum().backward()  # each trial gets exactly its own gradient
        optimizer.step()
    return mlp


def trial_groups(targets: Targets, batch_rows: int) -> list[slice]:
    """The groups of trials a fitting step runs its forward and backward on: all at once
    on a GPU, groups of at most :data:`CPU_STEP_ROWS` coordinates on the CPU."""
    t, n_rows = targets.rows.shape[:2]
    if targets.rows.device.type != "cpu":
        return [slice(0, t)]
    size = max(1, CPU_STEP_ROWS // min(n_rows, batch_rows))
    return [slice(s, min(s + size, t)) for s in range(0, t, size)]


def _batch(targets: Targets, weights: Tensor, gens, batch_rows: int, part: slice):
    """This step's coordinates ``[t, b, d]``, targets and loss weights ``[t, b, g]`` of the
    trials ``part``; all rows when there are at most ``batch_rows``, else each trial's own
    random rows."""
    t, n_rows, _ = targets.rows[part].shape
    if n_rows <= batch_rows:
        return gather_rows(targets, weights, None, part)
    idx = torch.stack([torch.randint(n_rows, (batch_rows,), generator=g) for g in gens[part]])
    return gather_rows(targets, weights, idx, part)  # idx [t, b]


def gather_rows(targets: Targets, weights: Tensor, idx: Tensor | None, part=slice(None)):
    """Coordinates ``[t, b, d]``, targets and loss weights ``[t, b, g]`` of the rows
    ``idx [t, b]`` (CPU) of the trials ``part``; every row when ``idx`` is None."""
    rows, weights = targets.rows[part], weights[part]
    if idx is None:
        return targets.enc.expand(rows.shape[0], -1, -1), rows, weights
    idx = idx.to(rows.device)
    gather = idx.unsqueeze(-1).expand(-1, -1, rows.shape[2])  # [t, b, g]
    return targets.enc[idx], torch.gather(rows, 1, gather), torch.gather(weights, 1, gather)


def predict_rows(predict, targets: Targets) -> Tensor:
    """Every row's prediction ``[T, R, g]`` by ``predict`` (``[T, b, d] -> [T, b, g]``), in
    chunks of :data:`PREDICT_ROWS` coordinates."""
    t = targets.n_trials
    parts = [
        predict(targets.enc[s : s + PREDICT_ROWS].expand(t, -1, -1))  # [T, b, g]
        for s in range(0, targets.enc.shape[0], PREDICT_ROWS)
    ]
    return torch.cat(parts, dim=1)


def rebuild(targets: Targets, rows: Tensor) -> dict[str, Tensor]:
    """Predictions ``[T, R, g]`` (standardised, fitting order) -> the reconstructed weights
    ``{param: [T, *shape]}`` in the family's layout and the trials' own unit order."""
    out = {}
    for i, g in enumerate(targets.grids):
        part = rows[:, targets.offsets[i] : targets.offsets[i + 1]]  # [T, rows, g]
        w = coords.from_rows(part, g) * targets.scales[:, i].view(-1, *[1] * len(g.shape))
        out[g.param] = coords.unpermute(w, *targets.perms[i])  # [T, *shape]
    return out


def relative_errors(original: Mapping[str, Tensor], rebuilt: Mapping[str, Tensor], params):
    """Per trial ``||w_hat - w|| / ||w||``: ``[T, L]`` per layer and ``[T]`` over all."""
    diff = torch.stack([(rebuilt[p] - original[p]).flatten(1).square().sum(1) for p in params], 1)
    norm = torch.stack([original[p].flatten(1).square().sum(1) for p in params], 1)  # [T, L]
    per_layer = (diff / norm.clamp_min(torch.finfo(norm.dtype).tiny)).sqrt()
    total = (diff.sum(1) / norm.sum(1).clamp_min(torch.finfo(norm.dtype).tiny)).sqrt()
    return per_layer, total


def predictor_parameters(mlp: StackedMLP, targets: Targets) -> int:
    """One trial's stored numbers: its predictor plus one scale per layer."""
    return mlp.n_params + len(targets.grids)


def distill(
    mlp: StackedMLP,
    targets: Targets,
    family: ModelFamily,
    arch: Mapping,
    params: Mapping[str, Tensor],
    x_train: Tensor,
    settings: ReconstructSettings,
    seeds: Sequence[int],
    forward_options: Mapping | None = None,
) -> None:
    """Choi et al.'s decoupled second phase: the predictors go on fitting the original
    networks' outputs on training images, through the rebuilt networks
    (:func:`distillation_loss`). ``params``: the original ``{name: [T, *shape]}``; each
    trial draws its own image batches."""
    options = dict(forward_options or {})
    gens = generators(seeds, f"reconstruct/{settings.seed}/distill")
    optimizer = torch.optim.Adam(mlp.parameters(), lr=settings.distill_lr)
    n = x_train.shape[0]
    for step in range(settings.distill_steps):
        cosine_lr(optimizer, settings.distill_lr, step, settings.distill_steps)
        idx = torch.stack([torch.randint(n, (settings.distill_batch,), generator=g) for g in gens])
        xb = x_train[idx.to(x_train.device)]  # [T, b, C, H, W]
        with torch.no_grad():
            teacher = family.forward(dict(params), xb, arch, **options)  # [T, b, classes]
        rebuilt = {**params, **rebuild(targets, predict_rows(mlp, targets))}
        student = family.forward(rebuilt, xb, arch, **options)  # [T, b, classes]
        loss = distillation_loss(student, teacher, settings.distill_loss)  # [T]
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()


def distillation_loss(student: Tensor, teacher: Tensor, kind: str) -> Tensor:
    """Per trial ``[T]``, from logits ``[T, b, classes]``: ``mse``, the mean squared
    difference of the logits; ``kl``, the mean over images of KL(teacher || student) of
    their softmax, which spends the predictor's capacity on the class probabilities and
    leaves the logits' free offset and scale alone."""
    if kind == "kl":
        per_image = F.kl_div(
            F.log_softmax(student, dim=-1),
            F.log_softmax(teacher, dim=-1),
            log_target=True,
            reduction="none",
        ).sum(dim=-1)  # [T, b]
        return per_image.mean(dim=1)
    return (student - teacher).square().mean(dim=(1, 2))
