"""Model families of the paper (and the Small CNN Zoo's network), written twice on purpose.

* A *batched* form: parameters are stacked along a leading trial axis ``T`` and one
  tensor op per layer runs all trials at once (``torch.baddbmm``). This is what the
  trainer uses.
* A *reference* form: a plain ``nn.Module`` holding one trial, with the same parameter
  names and layouts, so ``module.load_state_dict`` takes one trial of the batched
  parameters. Tests train it with ``torch.optim.Adam`` to prove the batched math is the
  paper's, and users load exported weights into it.

Parameter layouts follow torch's own modules (``nn.Linear.weight`` is ``[out, in]``), so
the HDF5 export needs no transposes and stays familiar.

Every batched forward takes two per-trial training choices: ``activation`` (the hidden
nonlinearity, one name for the whole ensemble: :data:`ACTIVATION_FUNCTIONS`) and
``dropout`` (None, or a :class:`weightzoo.train.dropout.TrialDropout` with one rate and one
mask generator per trial, applied after the hidden activations while training; evaluation
passes None). The defaults (``"relu"``, no dropout) compute exactly what the forwards
computed before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import hparams
from .dropout import TrialDropout, check_no_dropout

# CNN_HEADS and LayerInfo re-exported: the analyses and benchmarks import them from here
from .shapes import (  # noqa: F401
    CNN_HEADS,
    CNN_KERNEL,
    CNN_STRATEGIES,
    FORWARD_NEEDS_MODEL,
    SMALLCNN_STRIDE,
    STRATEGY_MODELS,
    VIT_KEYS,
    CNNShapes,
    DNNShapes,
    FamilyShapes,
    GenericShapes,
    LayerInfo,
    SmallCNNShapes,
    ViTShapes,
    check_strategy,
    get_shapes,
    same_padding,
)

Params = dict[str, Tensor]
Activation = Callable[[Tensor], Tensor]

# the hidden nonlinearities a trial may train with (training.activation); the names are
# weightzoo.train.hparams.ACTIVATIONS, which config validation reads without torch
ACTIVATION_FUNCTIONS: dict[str, Activation] = {"relu": F.relu, "tanh": torch.tanh}
if tuple(ACTIVATION_FUNCTIONS) != hparams.ACTIVATIONS:  # pragma: no cover - a developer's slip
    raise ImportError("models.ACTIVATION_FUNCTIONS and hparams.ACTIVATIONS differ")


def activation_function(name: str) -> Activation:
    """The function of activation ``name``, or an error naming the setting and the choices."""
    try:
        return ACTIVATION_FUNCTIONS[name]
    except (KeyError, TypeError):
        known = ", ".join(ACTIVATION_FUNCTIONS)
        raise ValueError(
            f"training.activation: unknown activation {name!r}; give one of {known}"
        ) from None


def _drop(dropout: TrialDropout | None, h: Tensor) -> Tensor:
    """Stacked ``h [T, B, ...]`` through ``dropout`` (unchanged without one)."""
    return h if dropout is None else dropout(h)


def _drop_trial(dropout: TrialDropout | None, h: Tensor, t: int) -> Tensor:
    """Trial ``t``'s ``h [B, ...]`` through ``dropout`` (unchanged without one)."""
    return h if dropout is None else dropout.trial(h, t)


class ModelFamily(FamilyShapes):
    """Interface of a model family (DNN, CNN, ViT, small CNN): its shapes
    (:class:`weightzoo.train.shapes.FamilyShapes`) and how it computes."""

    def forward(
        self,
        params: Params,
        x: Tensor,
        arch: Mapping | None = None,
        *,
        activation: str = "relu",
        dropout: TrialDropout | None = None,
    ) -> Tensor:
        """``x``: ``[T, B, *input_shape]`` -> logits ``[T, B, num_classes]``.

        DNN and CNN read all they need from the parameter shapes and ignore ``arch``; the
        ViT needs it (``nhead`` does not show in any shape), the small CNN for its padding.
        ``activation``: the hidden nonlinearity (:data:`ACTIVATION_FUNCTIONS`);
        ``dropout``: per-trial dropout after the hidden activations (training only; None:
        none)."""
        raise NotImplementedError

    def reference_module(
        self,
        arch: Mapping,
        input_shape,
        num_classes: int,
        *,
        activation: str = "relu",
        dropout: TrialDropout | None = None,
    ) -> nn.Module:
        """One trial as a plain module with the same parameter names. ``dropout``, a
        one-trial :class:`TrialDropout`, drops where the batched form does, in training mode
        only, drawing the same masks as that trial in the batched form."""
        raise NotImplementedError


class DNN(DNNShapes, ModelFamily):
    """in -> h1 -> h2 -> classes, the activation (relu by default) and dropout after each
    hidden layer; softmax lives in the loss (logits out)."""

    def forward(self, params, x, arch=None, *, activation="relu", dropout=None):
        act = activation_function(activation)
        h = x.flatten(2)  # [T, B, F]
        n_layers = len(params) // 2
        for i in range(1, n_layers + 1):
            w = params[f"fc{i}.weight"]  # [T, out, in]
            b = params[f"fc{i}.bias"]  # [T, out]
            h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))  # [T, B, out]
            if i < n_layers:
                h = _drop(dropout, act(h))
        return h

    def reference_module(self, arch, input_shape, num_classes, *, activation="relu", dropout=None):
        sizes = self._sizes(arch, input_shape, num_classes)
        return ReferenceDNN(sizes, activation=activation, dropout=dropout)


class ReferenceModule(nn.Module):
    """What the reference modules share: the activation, and one trial's dropout applied
    in training mode only (``nn.Dropout``'s rule) with the batched form's masks."""

    def __init__(self, activation: str = "relu", dropout: TrialDropout | None = None):
        super().__init__()
        self.act = activation_function(activation)
        if dropout is not None and dropout.n_trials != 1:
            raise ValueError(f"a reference module is one trial; got dropout of {dropout.n_trials}")
        self.dropout = dropout

    def drop(self, h: Tensor) -> Tensor:
        return self.dropout.trial(h, 0) if self.training and self.dropout is not None else h


class ReferenceDNN(ReferenceModule):
    """One trial of :class:`DNN` as an ordinary module (names ``fc1``, ``fc2``, ...)."""

    def __init__(self, sizes: list[int], *, activation="relu", dropout=None):
        super().__init__(activation, dropout)
        self.n_layers = len(sizes) - 1
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            self.add_module(f"fc{i}", nn.Linear(n_in, n_out))

    def forward(self, x: Tensor) -> Tensor:
        h = x.flatten(1)  # [B, F]
        for i in range(1, self.n_layers + 1):
            h = getattr(self, f"fc{i}")(h)
            if i < self.n_layers:
                h = self.drop(self.act(h))
        return h


def _linear(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Per-trial ``nn.Linear``: h ``[T, N, in]``, w ``[T, out, in]``, b ``[T, out]``."""
    return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))  # [T, N, out]


# --------------------------------------------------------------------------- CNN
class CNN(CNNShapes, ModelFamily):
    """Paper Table 1: one valid 3x3 conv (``channels`` kernels, stride 1) + relu (or the
    trial's activation; dropout after it), then an FC layer to the classes. ``head``:
    ``"flatten"`` (Table 1, FC over the whole conv map) or ``"gap"`` (the text's "global
    average pooling": mean over the map, FC ``C -> classes``).

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

    def forward(self, params, x, arch=None, *, activation="relu", dropout=None):
        act = activation_function(activation)
        # the head shows in fc.weight's shape ([T, classes, C] for gap), so no arch is needed
        gap = params["fc.weight"].shape[2] == params["conv.weight"].shape[1]
        if self.strategy == "loop":
            return _cnn_per_trial(params, x, gap, act, dropout)
        w, b = params["conv.weight"], params["conv.bias"]  # [T, C, Cin, k, k], [T, C]
        h = _drop(dropout, act(_conv_grouped(x, w, b)))  # [T, B, C, H', W']
        h = h.mean(dim=(3, 4)) if gap else h.flatten(2)  # [T, B, F]
        return _linear(h, params["fc.weight"], params["fc.bias"])  # [T, B, classes]

    def reference_module(self, arch, input_shape, num_classes, *, activation="relu", dropout=None):
        shapes = self.param_shapes(arch, input_shape, num_classes)
        n_features = shapes["fc.weight"][1]
        return ReferenceCNN(
            input_shape[0],
            arch["channels"],
            n_features,
            num_classes,
            activation=activation,
            dropout=dropout,
        )


def _cnn_per_trial(
    params: Params,
    x: Tensor,
    gap: bool,
    act: Activation = F.relu,
    dropout: TrialDropout | None = None,
) -> Tensor:
    """The whole CNN one trial at a time: x ``[T, B, Cin, H, W]`` -> logits ``[T, B, classes]``.

    Each trial runs exactly the ops it runs alone (conv, activation, its own dropout mask,
    head, ``F.linear``), so it is
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
    for t, (xt, w, b, fc_w, fc_b) in enumerate(per_trial):
        h = _drop_trial(dropout, act(F.conv2d(xt, w, b)), t)  # [B, C, H', W']
        h = h.mean(dim=(2, 3)) if gap else h.flatten(1)  # [B, F]
        logits.append(F.linear(h, fc_w, fc_b))  # [B, classes]
    return torch.stack(logits)  # [T, B, classes]


def _conv_grouped(x: Tensor, w: Tensor, b: Tensor, stride: int = 1) -> Tensor:
    """One conv with ``groups=T``: trials folded into the channel axis."""
    t, n, c_in, height, width = x.shape
    c = w.shape[1]
    xg = x.transpose(0, 1).reshape(n, t * c_in, height, width)  # [B, T*Cin, H, W]
    out = F.conv2d(xg, w.reshape(t * c, *w.shape[2:]), b.reshape(t * c), stride, groups=t)
    out = out.view(n, t, c, *out.shape[2:])  # [B, T, C, H', W']
    return out.transpose(0, 1)  # [T, B, C, H', W']


class ReferenceCNN(ReferenceModule):
    """One trial of :class:`CNN` as an ordinary module (names ``conv``, ``fc``)."""

    def __init__(
        self,
        c_in: int,
        channels: int,
        n_features: int,
        num_classes: int,
        *,
        activation="relu",
        dropout=None,
    ):
        super().__init__(activation, dropout)
        self.gap = n_features == channels
        self.conv = nn.Conv2d(c_in, channels, CNN_KERNEL)
        self.fc = nn.Linear(n_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.drop(self.act(self.conv(x)))  # [B, C, H', W']
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
    ``Linear(d_model -> classes)``. No class token. ``activation`` replaces the feed-forward
    relu (``"tanh"``: the encoder layer built with ``activation=torch.tanh``).

    No dropout: the layer's dropout sites (attention weights, feed-forward, both residuals)
    are not wired to per-trial masks, so a ``dropout`` with any rate > 0 is refused
    (``training.dropout`` must be 0 for ViT experiments); an all-zero one changes nothing.
    """

    def forward(self, params, x, arch=None, *, activation="relu", dropout=None):
        if arch is None:
            raise ValueError("ViT.forward needs the arch: nhead does not show in the shapes")
        check_no_dropout(dropout, "ViT")
        act = activation_function(activation)
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
        h = _encoder_layer(params, "encoder.", h, n, arch["nhead"], act)  # [T, B*n, D]
        pooled = h.view(t, n, n_tokens, d).mean(2)  # [T, B, D]
        return _linear(pooled, params["head.weight"], params["head.bias"])  # [T, B, classes]

    def reference_module(self, arch, input_shape, num_classes, *, activation="relu", dropout=None):
        check_no_dropout(dropout, "ViT")
        n_tokens = self._check(arch, input_shape)
        return ReferenceViT(
            input_shape[0],
            n_tokens,
            num_classes,
            *(arch[k] for k in VIT_KEYS),
            activation=activation,
        )


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


def _encoder_layer(
    params: Params, prefix: str, h: Tensor, batch: int, nhead: int, act: Activation = F.relu
) -> Tensor:
    """Post-norm ``nn.TransformerEncoderLayer`` (``act`` in the feed-forward, relu by default;
    no dropout) per trial, h ``[T, B*n, D]``."""

    def p(name: str) -> Tensor:
        return params[prefix + name]

    h = _layer_norm(
        h + _self_attention(params, prefix + "self_attn.", h, batch, nhead),
        p("norm1.weight"),
        p("norm1.bias"),
    )
    ff = _linear(
        act(_linear(h, p("linear1.weight"), p("linear1.bias"))),
        p("linear2.weight"),
        p("linear2.bias"),
    )
    return _layer_norm(h + ff, p("norm2.weight"), p("norm2.bias"))  # [T, B*n, D]


class ReferenceViT(nn.Module):
    """One trial of :class:`ViT` as an ordinary module around ``nn.TransformerEncoderLayer``."""

    def __init__(
        self,
        c_in,
        n_tokens,
        num_classes,
        d_model,
        nhead,
        patch,
        dim_feedforward,
        *,
        activation="relu",
    ):
        super().__init__()
        # the name "relu" keeps the layer's fused inference path; other activations as functions
        act = activation if activation == "relu" else activation_function(activation)
        self.patch_size = patch
        self.patch = nn.Linear(c_in * patch * patch, d_model)
        self.pos_embedding = nn.Parameter(torch.zeros(n_tokens, d_model))
        self.encoder = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward=dim_feedforward,
            dropout=0.0,
            activation=act,
            layer_norm_eps=LAYER_NORM_EPS,
            batch_first=True,
            norm_first=False,
        )
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.patch(_patchify(x, self.patch_size)) + self.pos_embedding  # [B, n, D]
        return self.head(self.encoder(h).mean(1))  # [B, classes]


# --------------------------------------------------------------------------- small CNN
class SmallCNN(SmallCNNShapes, ModelFamily):
    """The Small CNN Zoo network (:class:`weightzoo.train.shapes.SmallCNNShapes`): ``layers``
    3x3 convs, stride 2, each followed by the activation and then dropout (where their
    ``build_cnn`` puts ``keras.layers.Dropout``: after every conv, none before the dense
    layer beyond the last conv's), global average pooling, FC ``C -> classes``.

    ``strategy`` decides how the batched form runs the trials; none shows in the
    architecture or its name, and all draw a trial's dropout masks in the same order (conv
    1, 2, 3), so they drop the same units:

    * ``"loop_nhwc"`` (the CPU default): one trial at a time, so bit-identical alone or in
      any ensemble (``tests/test_smallcnn.py``), with other kernels than ``"loop"`` (equal
      to it up to rounding). The first conv is one matmul over the trial's im2col columns
      with the bias and the activation fused (:class:`_FirstConvNHWC`); its output stays
      in channels-last (NHWC) memory, so the later convs run oneDNN in NHWC. In ``"loop"``
      oneDNN reorders every conv's NCHW input and output to its blocked layout and back,
      and its weight gradient of the 1-channel first conv pads the images to 8 channels.
    * ``"loop"`` (the MPS default): one trial at a time through oneDNN's convs, NCHW, as
      the CNN's loop.
    * ``"grouped"`` (the CUDA default): the trials folded into the channels of one conv
      per layer; equal to the loop up to rounding only.

    Measured with the zoo's network (3 x 16 channels, 1x28x28, batch 512, Adam), 100 trials,
    ``EnsembleTrainer.train_epoch``, interleaved rounds on a 2-core AMD EPYC shared with
    other jobs, torch 2.14 (2026-12-07;
    ``.venv/bin/python benchmarks/bench_smallcnn.py --threads 1 --repeats 5``, and the same
    with ``--threads 2`` under ``OMP_WAIT_POLICY=passive``), over ``"loop"``:
    ``"loop_nhwc"`` 1.69x (rounds 1.54-1.83) on 1 thread and 1.59x (1.45-1.94) on 2;
    ``"grouped"`` 0.93x and 1.00x. Tried and not kept: every conv through oneDNN in NHWC
    (the images channels-last too) 1.03x and 0.97x; every conv as per-trial ``F.unfold``
    and matmul through autograd 0.58x and 0.43x (its im2col copies and col2im).
    """

    def __init__(self, strategy: str = "loop"):
        if strategy not in SMALLCNN_STRATEGIES:
            raise ValueError(
                f"smallcnn strategy must be one of {SMALLCNN_STRATEGIES}, got {strategy!r}"
            )
        self.strategy = strategy

    def forward(self, params, x, arch=None, *, activation="relu", dropout=None):
        """``arch``: for the padding, the one setting no shape shows; None = ``"valid"``."""
        act = activation_function(activation)
        n_layers = sum(1 for name in params if name.startswith("conv") and name.endswith("weight"))
        padding = "valid" if arch is None else self._padding(arch)
        if self.strategy == "loop":
            return _smallcnn_per_trial(params, x, n_layers, padding, act, dropout)
        if self.strategy == "loop_nhwc":
            return _smallcnn_per_trial_nhwc(params, x, n_layers, padding, activation, dropout)
        h = x  # [T, B, Cin, H, W]
        for i in range(1, n_layers + 1):
            w, b = params[f"conv{i}.weight"], params[f"conv{i}.bias"]  # [T, C, Cin, k, k], [T, C]
            h = _pad_same(h) if padding == "same" else h
            h = _drop(dropout, act(_conv_grouped(h, w, b, SMALLCNN_STRIDE)))  # [T, B, C, H', W']
        pooled = h.mean(dim=(3, 4))  # [T, B, C]
        return _linear(pooled, params["fc.weight"], params["fc.bias"])  # [T, B, classes]

    def reference_module(self, arch, input_shape, num_classes, *, activation="relu", dropout=None):
        self.param_shapes(arch, input_shape, num_classes)  # the images fit the layers
        return ReferenceSmallCNN(
            input_shape[0],
            arch["channels"],
            self._layers(arch),
            num_classes,
            self._padding(arch),
            activation=activation,
            dropout=dropout,
        )


# how the batched small CNN may run its trials: the CNN's two, and the per-trial loop in
# channels-last with the first conv as one matmul (SmallCNN's docstring)
SMALLCNN_STRATEGIES = (*CNN_STRATEGIES, "loop_nhwc")


def _pad_same(h: Tensor) -> Tensor:
    """Keras' ``same`` padding of a 3x3, stride-2 conv on ``h [..., H, W]`` (zeros)."""
    top, bottom = same_padding(h.shape[-2])
    left, right = same_padding(h.shape[-1])
    return F.pad(h, (left, right, top, bottom))


def _smallcnn_per_trial(
    params: Params,
    x: Tensor,
    n_layers: int,
    padding: str,
    act: Activation,
    dropout: TrialDropout | None,
) -> Tensor:
    """The whole small CNN one trial at a time (as :func:`_cnn_per_trial`, whose reasons
    hold here): x ``[T, B, Cin, H, W]`` -> logits ``[T, B, classes]``."""
    names = [f"conv{i}.{kind}" for i in range(1, n_layers + 1) for kind in ("weight", "bias")]
    stacked = [params[n].unbind(0) for n in (*names, "fc.weight", "fc.bias")]
    logits = []
    for t, (xt, *trial) in enumerate(zip(x.unbind(0), *stacked, strict=True)):
        h = xt  # [B, Cin, H, W]
        for i in range(n_layers):
            h = _pad_same(h) if padding == "same" else h
            h = F.conv2d(h, trial[2 * i], trial[2 * i + 1], SMALLCNN_STRIDE)  # [B, C, H', W']
            h = _drop_trial(dropout, act(h), t)
        logits.append(F.linear(h.mean(dim=(2, 3)), trial[-2], trial[-1]))  # [B, classes]
    return torch.stack(logits)  # [T, B, classes]


# the activations the first conv of "loop_nhwc" applies in place on its output, with their
# gradient from that output: autograd's own formulas for F.relu and torch.tanh
_FUSED_ACTIVATIONS: dict[str, tuple[Activation, Callable[[Tensor, Tensor], Tensor]]] = {
    "relu": (torch.Tensor.relu_, lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0)),
    "tanh": (torch.Tensor.tanh_, torch.ops.aten.tanh_backward),
}
if tuple(_FUSED_ACTIVATIONS) != hparams.ACTIVATIONS:  # pragma: no cover - a developer's slip
    raise ImportError("models._FUSED_ACTIVATIONS and hparams.ACTIVATIONS differ")


def _first_conv_columns(x: Tensor) -> Tensor:
    """im2col of the first conv plus a row of ones (the bias): x ``[B, Cin, H, W]`` ->
    ``[Cin*9 + 1, B*H'*W']``, rows in ``weight.flatten(1)``'s order ``(Cin, kh, kw)``, columns
    in NHWC order ``(B, H', W')``."""
    n, c_in, height, width = x.shape
    k, s = CNN_KERNEL, SMALLCNN_STRIDE
    h_out, w_out = (height - k) // s + 1, (width - k) // s + 1
    cols = x.new_empty(c_in * k * k + 1, n, h_out, w_out)
    patches = x.unfold(2, k, s).unfold(3, k, s)  # [B, Cin, H', W', k, k], a view
    cols[:-1].view(c_in, k, k, n, h_out, w_out).copy_(patches.permute(1, 4, 5, 0, 2, 3))
    cols[-1] = 1.0
    return cols.view(c_in * k * k + 1, n * h_out * w_out)


class _FirstConvNHWC(torch.autograd.Function):
    """One trial's first conv (3x3, stride 2, valid) as ONE matmul with the bias and the
    activation fused: x ``[B, Cin, H, W]`` (the images: no gradient) -> activated output
    ``[B*H'*W', C]``, rows in NHWC order.

    The backward applies the activation's gradient, then gets the weight and bias gradients
    together from the columns, image by image (one batched matmul) and summed over the
    images: on 2 threads MKL ran the one long matmul (reduction over all ``B*H'*W'`` rows,
    ``[10, 86528] @ [86528, 16]`` at the zoo's shapes) 4x slower than that. Every
    reduction is this trial's own, on shapes that do not depend on the ensemble.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor, activation: str) -> Tensor:
        if ctx.needs_input_grad[0]:
            raise ValueError(
                "smallcnn strategy 'loop_nhwc' gives no gradient for the images; "
                "detach them, or use the strategy 'loop'"
            )
        cols = _first_conv_columns(x)  # [K+1, N], K = Cin*9, N = B*H'*W'
        w_aug = torch.cat([w.flatten(1), b.unsqueeze(1)], dim=1)  # [C, K+1]
        out = torch.mm(cols.t(), w_aug.t())  # [N, C]
        _FUSED_ACTIVATIONS[activation][0](out)
        ctx.save_for_backward(cols, out)
        ctx.activation, ctx.weight_shape, ctx.batch = activation, w.shape, x.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        cols, out = ctx.saved_tensors
        grad = _FUSED_ACTIVATIONS[ctx.activation][1](grad, out)  # [N, C]
        n = ctx.batch
        per_image = torch.bmm(
            cols.view(cols.shape[0], n, -1).transpose(0, 1),  # [B, K+1, H'*W']
            grad.view(n, -1, grad.shape[1]),  # [B, H'*W', C]
        )  # [B, K+1, C]
        grad_w_aug = per_image.sum(0)  # [K+1, C]
        grad_w = grad_w_aug[:-1].t().reshape(ctx.weight_shape)  # [C, Cin, 3, 3]
        return None, grad_w, grad_w_aug[-1], None


def _smallcnn_per_trial_nhwc(
    params: Params,
    x: Tensor,
    n_layers: int,
    padding: str,
    activation: str,
    dropout: TrialDropout | None,
) -> Tensor:
    """The small CNN one trial at a time, channels-last: the first conv (and its
    activation) by :class:`_FirstConvNHWC`, the others by oneDNN on channels-last maps, which
    then needs no layout reorders around each conv. x ``[T, B, Cin, H, W]`` -> logits
    ``[T, B, classes]``. Per trial, as :func:`_smallcnn_per_trial`, so bit-identical alone or
    in any ensemble; equal to it up to rounding (other kernels)."""
    act = activation_function(activation)
    names = [f"conv{i}.{kind}" for i in range(1, n_layers + 1) for kind in ("weight", "bias")]
    stacked = [params[n].unbind(0) for n in (*names, "fc.weight", "fc.bias")]
    logits = []
    for t, (xt, *trial) in enumerate(zip(x.unbind(0), *stacked, strict=True)):
        xt = _pad_same(xt) if padding == "same" else xt  # [B, Cin, H, W]
        n = xt.shape[0]
        h_out, w_out = ((size - CNN_KERNEL) // SMALLCNN_STRIDE + 1 for size in xt.shape[2:])
        h = _FirstConvNHWC.apply(xt, trial[0], trial[1], activation)  # [B*H'*W', C]
        h = h.view(n, h_out, w_out, -1).permute(0, 3, 1, 2)  # [B, C, H', W'], channels-last
        h = _drop_trial(dropout, h, t)
        for i in range(1, n_layers):
            h = _pad_same(h) if padding == "same" else h
            h = F.conv2d(h, trial[2 * i], trial[2 * i + 1], SMALLCNN_STRIDE)  # [B, C, H', W']
            h = _drop_trial(dropout, act(h), t)
        logits.append(F.linear(h.mean(dim=(2, 3)), trial[-2], trial[-1]))  # [B, classes]
    return torch.stack(logits)  # [T, B, classes]


class ReferenceSmallCNN(ReferenceModule):
    """One trial of :class:`SmallCNN` as an ordinary module (``conv1`` .. ``convN``, ``fc``)."""

    def __init__(
        self,
        c_in: int,
        channels: int,
        n_layers: int,
        num_classes: int,
        padding: str = "valid",
        *,
        activation="relu",
        dropout=None,
    ):
        super().__init__(activation, dropout)
        self.n_layers, self.padding = n_layers, padding
        for i in range(1, n_layers + 1):
            conv = nn.Conv2d(c_in if i == 1 else channels, channels, CNN_KERNEL, SMALLCNN_STRIDE)
            self.add_module(f"conv{i}", conv)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = x  # [B, Cin, H, W]
        for i in range(1, self.n_layers + 1):
            h = _pad_same(h) if self.padding == "same" else h
            h = self.drop(self.act(getattr(self, f"conv{i}")(h)))  # [B, C, H', W']
        return self.fc(h.mean(dim=(2, 3)))  # [B, classes]


# ------------------------------------------------------------------------ generic
class ForwardNeedsModelError(NotImplementedError):
    """A forward pass was asked of a zoo whose network weightzoo does not know."""


class Generic(GenericShapes, ModelFamily):
    """The imported zoos' family (:class:`weightzoo.train.shapes.GenericShapes`): shapes
    and layers only. A forward pass needs the user's model class
    (:mod:`weightzoo.zoo.modelclass`, ``--model package.module:Class``)."""

    def forward(self, params, x, arch=None, *, activation="relu", dropout=None):
        raise ForwardNeedsModelError(FORWARD_NEEDS_MODEL)

    def reference_module(self, arch, input_shape, num_classes, *, activation="relu", dropout=None):
        raise ForwardNeedsModelError(FORWARD_NEEDS_MODEL)


FAMILIES: dict[str, ModelFamily] = {
    "dnn": DNN(),
    "cnn": CNN(),
    "vit": ViT(),
    "smallcnn": SmallCNN(),
    "generic": Generic(),
}


def get_family(name: str, **options) -> ModelFamily:
    """The registered family ``name``; ``options`` (e.g. ``strategy="unfold"`` for the CNN)
    build a new instance with them instead."""
    get_shapes(name)  # an unknown model fails naming the known ones
    family = FAMILIES[name]
    return type(family)(**options) if options else family


def family_for_device(name: str, strategy: str, device: torch.device) -> ModelFamily:
    """The family ``name`` running the way ``strategy`` says on ``device``.

    ``"auto"`` for the CNN and the small CNN: the grouped conv on CUDA (one kernel launch
    for all trials instead of ``T``; not measured on a GPU yet), a per-trial loop elsewhere.
    On Apple MPS the loop (grouped float32 convs with one input channel per group have had
    reported silent wrong results there; tests/gpu compares the two). On the CPU the CNN's
    ``"loop"`` (bit-identical, 1.7-2.7x the grouped conv there at C = 4..16, 100 trials)
    and the small CNN's ``"loop_nhwc"``, bit-identical too: at the zoo's shapes and 100
    trials 1.69x the small CNN's ``"loop"`` on 1 thread (rounds 1.54-1.83) and 1.59x on 2
    (rounds 1.45-1.94, ``OMP_WAIT_POLICY=passive``), measured by
    ``.venv/bin/python benchmarks/bench_smallcnn.py --threads 1 --repeats 5`` (and
    ``--threads 2``) on a shared 2-core AMD EPYC, 2026-12-07 (:class:`SmallCNN`)."""
    if name in STRATEGY_MODELS:
        if strategy == "auto":
            strategy = _auto_strategy(name, torch.device(device))
        return get_family(name, strategy=strategy)
    check_strategy(name, strategy)
    return get_family(name)


def _auto_strategy(name: str, device: torch.device) -> str:
    if device.type == "cuda":
        return "grouped"
    return "loop_nhwc" if name == "smallcnn" and device.type == "cpu" else "loop"


def trial_state_dict(params: Mapping[str, Tensor], k: int) -> dict[str, Tensor]:
    """Trial ``k`` of stacked ``[T, ...]`` parameters, ready for ``load_state_dict``."""
    return {name: p[k].detach().clone() for name, p in params.items()}
