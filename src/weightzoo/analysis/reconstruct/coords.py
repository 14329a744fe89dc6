"""Where a weight sits: each reconstructed layer as rows of targets with coordinates.

A layer becomes ``rows x group`` targets. The predictor maps one row's coordinates
(layer, output unit or filter, input unit or channel) to its ``group`` values:

* a conv weight ``[C, Cin, k, k]``: one row per (filter, channel), its whole ``k x k``
  kernel (NeRN's unit); ``group = k*k``;
* a linear weight ``[out, in]``: one row per (output unit, block of ``group`` consecutive
  inputs), the last block zero-padded and masked out of the loss. ``group`` is the
  network's: ``k*k`` in a network with convs (so one predictor serves all its layers), 1
  otherwise (a row is then one weight: DNN and ViT).

Coordinates are scaled to [0, 1] per axis (``index / (n - 1)``), so every layer spans the
same range whatever its width; the encoding is NeRN's sinusoidal one,
``sin(2^l * pi * c)`` and ``cos(2^l * pi * c)`` for ``l < levels`` and each coordinate.

Unit order. Hidden units can be permuted without changing the function. With
``order="norm"`` each hidden layer's units are sorted by the L2 norm of their incoming
weights before fitting (the next layer's inputs follow them), so neighbouring coordinates
hold similar rows; predictions are put back in the original order. NeRN reorders kernels
by a similarity heuristic; this is a simpler rule of the same kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ...train.models import ModelFamily


@dataclass(frozen=True)
class LayerGrid:
    """One reconstructed weight tensor laid out as ``rows x group`` targets."""

    param: str
    label: str
    index: int  # position among the reconstructed layers, input side first
    shape: tuple[int, ...]  # the per-trial weight shape
    group: int  # values per row
    n_out: int  # output units (filters)
    n_in: int  # input units (channels), or input blocks of a linear weight
    kernel: bool  # a conv weight: one row per (filter, channel)

    @property
    def rows(self) -> int:
        return self.n_out * self.n_in

    @property
    def n_weights(self) -> int:
        return math.prod(self.shape)


def network_group(shapes: Mapping[str, tuple[int, ...]], params) -> int:
    """Values per row of a network: the kernel size where it has convs, else 1."""
    kernels = [math.prod(shapes[p][2:]) for p in params if len(shapes[p]) == 4]
    return max(kernels, default=1)


def layer_grids(family: ModelFamily, arch: Mapping, shapes: Mapping) -> list[LayerGrid]:
    """The reconstructed layers (the family's analysed weights, ``ModelFamily.layers``)."""
    layers = family.layers(arch)
    group = network_group(shapes, [layer.param for layer in layers])
    grids = []
    for i, layer in enumerate(layers):
        shape = tuple(shapes[layer.param])
        kernel = len(shape) == 4
        n_in = shape[1] if kernel else -(-shape[1] // group)
        grids.append(LayerGrid(layer.param, layer.label, i, shape, group, shape[0], n_in, kernel))
    return grids


def to_rows(w: Tensor, grid: LayerGrid) -> Tensor:
    """Stacked weights ``[T, *shape]`` -> targets ``[T, rows, group]`` (padding: 0)."""
    t = w.shape[0]
    if grid.kernel:
        return w.reshape(t, grid.rows, grid.group)  # [T, C*Cin, k*k]
    pad = grid.n_in * grid.group - grid.shape[1]
    w = torch.nn.functional.pad(w, (0, pad))  # [T, out, n_in*group]
    return w.reshape(t, grid.rows, grid.group)


def from_rows(rows: Tensor, grid: LayerGrid) -> Tensor:
    """Predictions ``[T, rows, group]`` -> weights ``[T, *shape]`` (padding dropped)."""
    t = rows.shape[0]
    if grid.kernel:
        return rows.reshape(t, *grid.shape)
    w = rows.reshape(t, grid.n_out, grid.n_in * grid.group)  # [T, out, padded in]
    return w[:, :, : grid.shape[1]]


def row_mask(grid: LayerGrid) -> Tensor:
    """``[rows, group]`` bool: True where a row's value is a real weight (not padding)."""
    if grid.kernel:
        return torch.ones(grid.rows, grid.group, dtype=torch.bool)
    inputs = torch.arange(grid.n_in * grid.group) < grid.shape[1]  # [n_in*group]
    return inputs.view(1, grid.n_in, grid.group).expand(grid.n_out, -1, -1).reshape(grid.rows, -1)


def coordinates(grids: list[LayerGrid]) -> Tensor:
    """``[R, 3]`` float64 (R = all layers' rows): (layer, out, in), each scaled to [0, 1]."""

    def scaled(n: int) -> Tensor:
        return torch.arange(n, dtype=torch.float64) / max(n - 1, 1)

    n_layers = len(grids)
    parts = []
    for g in grids:
        out = scaled(g.n_out).repeat_interleave(g.n_in)  # [rows]
        inp = scaled(g.n_in).repeat(g.n_out)  # [rows]
        layer = torch.full((g.rows,), g.index / max(n_layers - 1, 1), dtype=torch.float64)
        parts.append(torch.stack([layer, out, inp], dim=1))  # [rows, 3]
    return torch.cat(parts)


def encode(coords: Tensor, levels: int) -> Tensor:
    """NeRN's positional encoding: ``[R, d]`` -> ``[R, d * 2 * levels]``, per coordinate
    ``sin(2^l pi c), cos(2^l pi c)`` for ``l = 0 .. levels - 1``."""
    freqs = math.pi * 2.0 ** torch.arange(levels, dtype=coords.dtype)  # [L]
    x = coords.unsqueeze(-1) * freqs  # [R, d, L]
    return torch.cat([torch.sin(x), torch.cos(x)], dim=-1).flatten(1)  # [R, d*2L]


# --------------------------------------------------------------------------- unit order
def couplings(family_name: str, grids: list[LayerGrid]) -> list[tuple[int, int, int]]:
    """Hidden units shared by two reconstructed layers: ``(a, b, block)``, layer ``a``'s
    output unit ``u`` feeds layer ``b``'s inputs ``u*block .. u*block+block-1`` (the CNN's
    flatten head: a filter's whole map). Permuting them together keeps the function."""
    by_param = {g.param: g for g in grids}
    if family_name == "dnn" or family_name == "smallcnn":
        pairs = list(zip(grids[:-1], grids[1:], strict=True))
    elif family_name == "cnn":
        pairs = [(by_param["conv.weight"], by_param["fc.weight"])]
    elif family_name == "vit":
        pairs = [(by_param["encoder.linear1.weight"], by_param["encoder.linear2.weight"])]
    else:
        raise ValueError(f"reconstruct: no unit couplings for model {family_name!r}")
    return [(a.index, b.index, b.shape[1] // a.shape[0]) for a, b in pairs]


def unit_orders(family_name: str, grids: list[LayerGrid], weights: list[Tensor], order: str):
    """Per layer ``(out_perm, in_perm)``: ``[T, shape[0]]`` and ``[T, shape[1]]`` int64
    (identity where nothing is reordered). ``weights``: each layer's ``[T, *shape]``."""
    t = weights[0].shape[0]

    def identity(n: int) -> Tensor:
        return torch.arange(n).expand(t, n)

    perms = [[identity(g.shape[0]), identity(g.shape[1])] for g in grids]
    if order == "none":
        return perms
    for a, b, block in couplings(family_name, grids):
        norms = weights[a].flatten(2).norm(dim=2)  # [T, units]
        perm = torch.argsort(norms, dim=1, stable=True)  # [T, units]
        perms[a][0] = perm
        offsets = torch.arange(block)
        perms[b][1] = (perm.unsqueeze(-1) * block + offsets).flatten(1)  # [T, units*block]
    return perms


def permute(w: Tensor, out_perm: Tensor, in_perm: Tensor) -> Tensor:
    """``w [T, out, in, ...]`` with its units in the order ``out_perm``, ``in_perm``."""
    w = _take(w, out_perm, 1)
    return _take(w, in_perm, 2)


def unpermute(w: Tensor, out_perm: Tensor, in_perm: Tensor) -> Tensor:
    """The inverse of :func:`permute`."""
    w = _take(w, torch.argsort(in_perm, dim=1), 2)
    return _take(w, torch.argsort(out_perm, dim=1), 1)


def _take(w: Tensor, perm: Tensor, axis: int) -> Tensor:
    shape = [w.shape[0]] + [1] * (w.dim() - 1)
    shape[axis] = perm.shape[1]
    index = perm.to(w.device).view(shape).expand(w.shape)
    return torch.gather(w, axis, index)
