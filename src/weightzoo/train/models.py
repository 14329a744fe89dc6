"""Model families of the paper, written twice on purpose.

* A *batched* form: parameters are stacked along a leading trial axis ``T`` and one
  tensor op per layer runs all trials at once (``torch.baddbmm``). This is what the
  trainer uses.
* A *reference* form: a plain ``nn.Module`` holding one trial, with the same parameter
  names and layouts, so ``module.load_state_dict`` takes one trial of the batched
  parameters. Tests train it with ``torch.optim.Adam`` to prove the batched math is the
  paper's, and users load exported weights into it.

Parameter layouts follow torch's own modules (``nn.Linear.weight`` is ``[out, in]``), so
the HDF5 export needs no transposes and stays familiar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# CNN_HEADS and LayerInfo re-exported: the analyses and benchmarks import them from here
from .shapes import (  # noqa: F401
    CNN_HEADS,
    CNN_KERNEL,
    CNN_STRATEGIES,
    VIT_KEYS,
    CNNShapes,
    DNNShapes,
    FamilyShapes,
    LayerInfo,
    ViTShapes,
    check_strategy,
    get_shapes,
)

Params = dict[str, Tensor]


class ModelFamily(FamilyShapes):
    """Interface of a model family (DNN, CNN, ViT): its shapes
    (:class:`weightzoo.train.shapes.FamilyShapes`) and how it computes."""

    def forward(self, params: Params, x: Tensor, arch: Mapping | None = None) -> Tensor:
        """``x``: ``[T, B, *input_shape]`` -> logits ``[T, B, num_classes]``.

        DNN and CNN read all they need from the parameter shapes and ignore ``arch``; the
        ViT needs it (``nhead`` does not show in any shape)."""
        raise NotImplementedError

    def reference_module(self, arch: Mapping, input_shape, num_classes: int) -> nn.Module:
        raise NotImplementedError


class DNN(DNNShapes, ModelFamily):
    """in -> h1 -> h2 -> classes, relu between; softmax lives in the loss (logits out)."""

    def forward(self, params: Params, x: Tensor, arch: Mapping | None = None) -> Tensor:
        h = x.flatten(2)  # [T, B, F]
        n_layers = len(params) // 2
        for i in range(1, n_layers + 1):
            w = params[f"fc{i}.weight"]  # [T, out, in]
            b = params[f"fc{i}.bias"]  # [T, out]
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))  # [T, B, out]
            if i < n_layers:
                h = F.relu(h)
        return h

    def reference_module(self, arch, input_shape, num_classes):
        return ReferenceDNN(self._sizes(arch, input_shape, num_classes))


class ReferenceDNN(nn.Module):
    """One trial of :class:`DNN` as an ordinary module (names ``fc1``, ``fc2``, ...)."""

    def __init__(self, sizes: list[int]):
        super().__init__()
        self.n_layers = len(sizes) - 1
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            self.add_module(f"fc{i}", nn.Linear(n_in, n_out))

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(1)  # [B, F]
        for i in range(1, self.n_layers + 1):
            h = getattr(self, f"fc{i}")(h)
            if i < self.n_layers:
                h = F.relu(h)
        return h


def _linear(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Per-trial ``nn.Linear``: h ``[T, N, in]``, w ``[T, out, in]``, b ``[T, out]``."""
    return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))  # [T, N, out]


# --------------------------------------------------------------------------- CNN
class CNN(CNNShapes, ModelFamily):
    """Paper Table 1: one valid 3x3 conv (``channels`` kernels, stride 1) + relu, then an FC
    layer to the classes. ``head``: ``"flatten"`` (Table 1, FC over the whole conv map) or
    ``"gap"`` (the text's "global average pooling": mean over the map, FC ``C -> classes``).

    ``strategy`` decides how the batched form runs the trials; every strategy computes the
    same function and none shows in the architecture or its name. Measured on a 2-core CPU
    with torch 2.14 (``tests/test_models.py`` checks the bit-identity):

    * ``"loop"`` (the CPU default): the whole network one trial at a time on the stacked
      parameters (:func:`_cnn_per_trial`). A trial runs exactly the ops it runs alone, so it
      is bit-identical alone or in an ensemble, and its activations stay one trial's size.
      At 100 trials, MNIST size: 1.3x (C = 16) and 1.6x (C = 4) the one-trial-at-a-time
      reference loop (``benchmarks/bench_models.py``); a loop over the conv only,
      with the conv maps stacked for one relu and one batched FC, ran at 0.8x (C = 16).
    * ``"grouped"`` (the GPU default, where one launch for all trials beats T small
      launches): trials folded into channels, one conv with ``groups=T``. Equal to the loop
      up to rounding only: oneDNN/cuDNN pick their algorithm by ``T``, so a trial differs in
      the last bits between ensemble sizes (tests bound the difference).

    An im2col + ``baddbmm`` form was tried and dropped: its weight gradient is one matmul
    whose reduction (batch x positions) MKL splits differently by ``T``, so it is neither
    bit-identical nor faster than the loop.
    """

    def __init__(self, strategy: str = "loop"):
        if strategy not in CNN_STRATEGIES:
            raise ValueError(f"CNN strategy must be one of {CNN_STRATEGIES}, got {strategy!r}")
        self.strategy = strategy

    def forward(self, params: Params, x: Tensor, arch: Mapping | None = None) -> Tensor:
        # the head shows in fc.weight's shape ([T, classes, C] for gap), so no arch is needed
        gap = params["fc.weight"].shape[2] == params["conv.weight"].shape[1]
        if self.strategy == "loop":
            return _cnn_per_trial(params, x, gap)
        w, b = params["conv.weight"], params["conv.bias"]  # [T, C, Cin, k, k], [T, C]
        h = F.relu(_conv_grouped(x, w, b))  # [T, B, C, H', W']
        h = h.mean(dim=(3, 4)) if gap else h.flatten(2)  # [T, B, F]
        return _linear(h, params["fc.weight"], params["fc.bias"])  # [T, B, classes]

    def reference_module(self, arch, input_shape, num_classes):
        shapes = self.param_shapes(arch, input_shape, num_classes)
        return ReferenceCNN(input_shape[0], arch["channels"], shapes["fc.weight"][1], num_classes)


def _cnn_per_trial(params: Params, x: Tensor, gap: bool) -> Tensor:
    """The whole CNN one trial at a time: x ``[T, B, Cin, H, W]`` -> logits ``[T, B, classes]``.

    Each trial runs exactly the ops it runs alone (conv, relu, head, ``F.linear``), so it is
    bit-identical in any ensemble, and its activations (``[B, C, H', W']``, 4.3 MB at C = 16,
    B = 100) stay the size of one trial's instead of ``T`` times that: stacked, the conv map of
    100 trials is 432 MB, and relu and its backward over it ran at memory speed (49 % of a
    step, profiled). ``unbind`` (not indexing) takes the trials apart, so the
    backward stacks the gradients once."""
    per_trial = zip(
        x.unbind(0),
        params["conv.weight"].unbind(0),
        params["conv.bias"].unbind(0),
        params["fc.weight"].unbind(0),
        params["fc.bias"].unbind(0),
        strict=True,
    )
    logits = []
    for xt, w, b, fc_w, fc_b in per_trial:
        h = F.relu(F.conv2d(xt, w, b))  # [B, C, H', W']
        h = h.mean(dim=(2, 3)) if gap else h.flatten(1)  # [B, F]
        logits.append(F.linear(h, fc_w, fc_b))  # [B, classes]
    return torch.stack(logits)  # [T, B, classes]


def _conv_grouped(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """One conv with ``groups=T``: trials folded into the channel axis."""
    t, n, c_in, height, width = x.shape
    c = w.shape[1]
    xg = x.transpose(0, 1).reshape(n, t * c_in, height, width)  # [B, T*Cin, H, W]
    out = F.conv2d(xg, w.reshape(t * c, *w.shape[2:]), b.reshape(t * c), groups=t)
    out = out.view(n, t, c, *out.shape[2:])  # [B, T, C, H', W']
    return out.transpose(0, 1)  # [T, B, C, H', W']


class ReferenceCNN(nn.Module):
    """One trial of :class:`CNN` as an ordinary module (names ``conv``, ``fc``)."""

    def __init__(self, c_in: int, channels: int, n_features: int, num_classes: int):
        super().__init__()
        self.gap = n_features == channels
        self.conv = nn.Conv2d(c_in, channels, CNN_KERNEL)
        self.fc = nn.Linear(n_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv(x))  # [B, C, H', W']
        h = h.mean(dim=(2, 3)) if self.gap else h.flatten(1)  # [B, F]
        return self.fc(h)


# --------------------------------------------------------------------------- ViT
LAYER_NORM_EPS = 1e-5  # nn.TransformerEncoderLayer's default


class ViT(ViTShapes, ModelFamily):
    """A minimal vision transformer (paper Table 1: one encoder, ``d_model``, ``nhead``).

    Non-overlapping ``patch x patch`` patches -> ``Linear(Cin*P*P -> d_model)`` plus a
    learnable position embedding -> ONE post-norm encoder layer, exactly
    ``nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0,
    activation="relu", batch_first=True, norm_first=False)`` -> mean over tokens ->
    ``Linear(d_model -> classes)``. No class token.

    Dropout is 0: the batched form has no dropout, since per-trial dropout masks would have
    to come from per-trial generators to keep a trial independent of its ensemble.
    """

    def forward(self, params: Params, x: Tensor, arch: Mapping | None = None) -> Tensor:
        if arch is None:
            raise ValueError("ViT.forward needs the arch: nhead does not show in the shapes")
        t, n = x.shape[:2]
        d = params["patch.weight"].shape[1]
        p = math.isqrt(params["patch.weight"].shape[2] // x.shape[2])
        tokens = _patchify(x, p)  # [T, B, n, Cin*P*P]
        n_tokens = tokens.shape[2]
        h = _linear(
            tokens.reshape(t, n * n_tokens, -1), params["patch.weight"], params["patch.bias"]
        )
        h = h.view(t, n, n_tokens, d) + params["pos_embedding"].unsqueeze(1)  # [T, B, n, D]
        h = h.reshape(t, n * n_tokens, d)  # [T, B*n, D]
        h = _encoder_layer(params, "encoder.", h, n, arch["nhead"])  # [T, B*n, D]
        pooled = h.view(t, n, n_tokens, d).mean(2)  # [T, B, D]
        return _linear(pooled, params["head.weight"], params["head.bias"])  # [T, B, classes]

    def reference_module(self, arch, input_shape, num_classes):
        n_tokens = self._check(arch, input_shape)
        return ReferenceViT(input_shape[0], n_tokens, num_classes, *(arch[k] for k in VIT_KEYS))


def _patchify(x: Tensor, p: int) -> Tensor:
    """``[..., C, H, W]`` -> ``[..., n, C*p*p]``: non-overlapping patches, row-major, each
    flattened as ``(C, p, p)`` (the layout of a ``Conv2d(kernel=stride=p)`` weight)."""
    *lead, c, height, width = x.shape
    nd = len(lead)
    x = x.reshape(*lead, c, height // p, p, width // p, p)
    x = x.permute(*range(nd), nd + 1, nd + 3, nd, nd + 2, nd + 4)  # [..., H/p, W/p, C, p, p]
    return x.reshape(*lead, (height // p) * (width // p), c * p * p)


def _layer_norm(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Per-trial ``nn.LayerNorm`` over the last axis: h ``[T, N, D]``, w and b ``[T, D]``."""
    normed = F.layer_norm(h, h.shape[-1:], eps=LAYER_NORM_EPS)  # [T, N, D]
    return torch.addcmul(b.unsqueeze(1), normed, w.unsqueeze(1))


def _self_attention(params: Params, prefix: str, h: Tensor, batch: int, nhead: int) -> Tensor:
    """``nn.MultiheadAttention(h, h, h)`` per trial; h ``[T, B*n, D]`` -> ``[T, B*n, D]``.

    Trials are folded into the batch axis of ``scaled_dot_product_attention``."""
    t, bn, d = h.shape
    n, dh = bn // batch, d // nhead
    qkv = _linear(h, params[prefix + "in_proj_weight"], params[prefix + "in_proj_bias"])
    qkv = qkv.view(t * batch, n, 3, nhead, dh)  # [T*B, n, 3, H, dh]
    # strided views, not a permuted copy: the CPU attention kernel reads any strides, and
    # the backward of unbind stacks the three gradients straight into qkv's layout
    q, k, v = (m.transpose(1, 2) for m in qkv.unbind(2))  # each [T*B, H, n, dh]
    att = F.scaled_dot_product_attention(q, k, v)  # [T*B, H, n, dh]
    att = att.view(t, batch, nhead, n, dh).transpose(2, 3).reshape(t, bn, d)  # [T, B*n, D]
    return _linear(att, params[prefix + "out_proj.weight"], params[prefix + "out_proj.bias"])


def _encoder_layer(params: Params, prefix: str, h: Tensor, batch: int, nhead: int) -> Tensor:
    """Post-norm ``nn.TransformerEncoderLayer`` (relu, no dropout) per trial, h ``[T, B*n, D]``."""

    def p(name: str) -> Tensor:
        return params[prefix + name]

    h = _layer_norm(
        h + _self_attention(params, prefix + "self_attn.", h, batch, nhead),
        p("norm1.weight"),
        p("norm1.bias"),
    )
    ff = _linear(
        F.relu(_linear(h, p("linear1.weight"), p("linear1.bias"))),
        p("linear2.weight"),
        p("linear2.bias"),
    )
    return _layer_norm(h + ff, p("norm2.weight"), p("norm2.bias"))  # [T, B*n, D]


class ReferenceViT(nn.Module):
    """One trial of :class:`ViT` as an ordinary module around ``nn.TransformerEncoderLayer``."""

    def __init__(self, c_in, n_tokens, num_classes, d_model, nhead, patch, dim_feedforward):
        super().__init__()
        self.patch_size = patch
        self.patch = nn.Linear(c_in * patch * patch, d_model)
        self.pos_embedding = nn.Parameter(torch.zeros(n_tokens, d_model))
        self.encoder = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward=dim_feedforward,
            dropout=0.0,
            activation="relu",
            layer_norm_eps=LAYER_NORM_EPS,
            batch_first=True,
            norm_first=False,
        )
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.patch(_patchify(x, self.patch_size)) + self.pos_embedding  # [B, n, D]
        return self.head(self.encoder(h).mean(1))  # [B, classes]


FAMILIES: dict[str, ModelFamily] = {"dnn": DNN(), "cnn": CNN(), "vit": ViT()}


def get_family(name: str, **options) -> ModelFamily:
    """The registered family ``name``; ``options`` (e.g. ``strategy="unfold"`` for the CNN)
    build a new instance with them instead."""
    get_shapes(name)  # an unknown model fails naming the known ones
    family = FAMILIES[name]
    return type(family)(**options) if options else family


def family_for_device(name: str, strategy: str, device: torch.device) -> ModelFamily:
    """The family ``name`` running the way ``strategy`` says on ``device``.

    ``"auto"`` for the CNN: the per-trial loop on the CPU (bit-identical, 1.7-2.7x the
    grouped conv there at C = 4..16, 100 trials) and on Apple MPS (grouped float32 convs with
    one input channel per group have had reported silent wrong results there; tests/gpu
    compares the two), the
    grouped conv on CUDA (one kernel launch for all trials instead of ``T``; not measured
    on a GPU yet)."""
    if name == "cnn":
        if strategy == "auto":
            strategy = "loop" if torch.device(device).type in ("cpu", "mps") else "grouped"
        return get_family("cnn", strategy=strategy)
    check_strategy(name, strategy)
    return get_family(name)


def trial_state_dict(params: Mapping[str, Tensor], k: int) -> dict[str, Tensor]:
    """Trial ``k`` of stacked ``[T, ...]`` parameters, ready for ``load_state_dict``."""
    return {name: p[k].detach().clone() for name, p in params.items()}
