"""What a model family's architectures look like, without torch: names, parameter shapes
and the layers the analyses read.

Config validation (weightzoo.config, while Snakemake builds its DAG) checks every
architecture against its dataset's images here, so a ViT patch that does not tile the
images fails before any job, in a process that never imports torch.
:mod:`weightzoo.train.models` adds the computing half (the batched forward and the
reference modules) to these classes; the shapes are written once, here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class LayerInfo:
    """How the analysis reads one weight tensor of a model.

    ``incoming_axes``: axes summed over to get a node's strength (Σ_j |w_ij|), counted
    on the per-trial tensor (no trial axis). For ``nn.Linear`` ``[out, in]`` that is (1,).
    """

    param: str
    label: str
    incoming_axes: tuple[int, ...]


class FamilyShapes:
    """Architecture side of a model family (DNN, CNN, ViT, small CNN, generic): no tensors
    involved."""

    name: str = ""

    def arch_name(self, arch: Mapping) -> str:
        raise NotImplementedError

    def param_shapes(self, arch: Mapping, input_shape: tuple[int, ...], num_classes: int):
        """Ordered ``{param name: per-trial shape}``; the order fixes the init draws."""
        raise NotImplementedError

    def layers(self, arch: Mapping) -> list[LayerInfo]:
        """Weight tensors the paper's analyses look at, input side first."""
        raise NotImplementedError

    def linear_weights(self, arch: Mapping) -> tuple[str, ...]:
        """The ``[out, in]`` weights that ``forward`` only uses as ``_linear(h, w, b)``.

        The trainer stores these as ``[T, in, out]`` and hands ``forward`` a transposed view:
        ``baddbmm`` then reads them contiguously and autograd's weight gradient
        (``hᵀ @ grad``, ``[T, in, out]``) already has the stored layout. Stored ``[T, out,
        in]``, that gradient arrives transposed and is copied every step (10 % of a DNN step
        at 100 trials). Values and names do not change.

        Bit-identity alone vs in an ensemble holds either way (weightzoo.train.device.MKL_CBWR).
        """
        return ()


class DNNShapes(FamilyShapes):
    name = "dnn"

    def arch_name(self, arch: Mapping) -> str:
        return "h" + "-".join(str(w) for w in arch["widths"])

    def _sizes(self, arch: Mapping, input_shape, num_classes: int) -> list[int]:
        n_in = 1
        for d in input_shape:
            n_in *= d
        return [n_in, *arch["widths"], num_classes]

    def param_shapes(self, arch, input_shape, num_classes):
        sizes = self._sizes(arch, input_shape, num_classes)
        shapes = {}
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
            shapes[f"fc{i}.weight"] = (n_out, n_in)
            shapes[f"fc{i}.bias"] = (n_out,)
        return shapes

    def layers(self, arch):
        n_layers = len(arch["widths"]) + 1
        return [LayerInfo(f"fc{i}.weight", f"FC{i}", (1,)) for i in range(1, n_layers + 1)]

    def linear_weights(self, arch):
        return tuple(layer.param for layer in self.layers(arch))


CNN_HEADS = ("flatten", "gap")
CNN_STRATEGIES = ("loop", "grouped")
CNN_KERNEL = 3


class CNNShapes(FamilyShapes):
    name = "cnn"

    @staticmethod
    def _head(arch: Mapping) -> str:
        head = arch.get("head", "flatten")
        if head not in CNN_HEADS:
            raise ValueError(f"CNN head must be one of {CNN_HEADS}, got {head!r}")
        return head

    def arch_name(self, arch: Mapping) -> str:
        suffix = "" if self._head(arch) == "flatten" else "-" + self._head(arch)
        return f"c{arch['channels']}{suffix}"

    def param_shapes(self, arch, input_shape, num_classes):
        c_in, height, width = input_shape
        c, k = arch["channels"], CNN_KERNEL
        n_features = c * (height - k + 1) * (width - k + 1) if self._head(arch) == "flatten" else c
        return {
            "conv.weight": (c, c_in, k, k),
            "conv.bias": (c,),
            "fc.weight": (num_classes, n_features),
            "fc.bias": (num_classes,),
        }

    def layers(self, arch):
        return [LayerInfo("conv.weight", "Conv", (1, 2, 3)), LayerInfo("fc.weight", "FC", (1,))]


SMALLCNN_PADDINGS = ("valid", "same")
SMALLCNN_STRIDE = 2
SMALLCNN_LAYERS = 3


class SmallCNNShapes(FamilyShapes):
    """The Small CNN Zoo network (Unterthiner et al. 2020, arXiv:2002.11448): ``layers``
    3x3 convs of ``channels`` kernels, stride 2, each followed by the activation, global
    average pooling, one FC ``channels -> classes``. With the zoo's 3 layers of 16 on 1x28x28
    images: 160 + 2,320 + 2,320 + 170 = 4,970 parameters (their README).

    ``padding``: ``"valid"`` (theirs: Keras' default in their ``build_cnn``; 28 -> 13 -> 6 ->
    2) or ``"same"`` (Keras' ``same``, the extra row and column at the bottom and right;
    28 -> 14 -> 7 -> 4), which keeps 3 layers on 8x8 digits (8 -> 4 -> 2 -> 1) where valid
    convs run out of pixels after two. The padding changes no shape, so the forward reads it
    from the arch."""

    name = "smallcnn"

    @staticmethod
    def _layers(arch: Mapping) -> int:
        layers = arch.get("layers", SMALLCNN_LAYERS)
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise ValueError(f"smallcnn layers must be an integer >= 1, got {layers!r}")
        return layers

    @staticmethod
    def _padding(arch: Mapping) -> str:
        padding = arch.get("padding", "valid")
        if padding not in SMALLCNN_PADDINGS:
            raise ValueError(
                f"smallcnn padding must be one of {SMALLCNN_PADDINGS}, got {padding!r}"
            )
        return padding

    def arch_name(self, arch: Mapping) -> str:
        layers, padding = self._layers(arch), self._padding(arch)
        suffix = "" if layers == SMALLCNN_LAYERS else f"-l{layers}"
        return f"c{arch['channels']}{suffix}" + ("" if padding == "valid" else "-same")

    def map_sizes(self, arch: Mapping, height: int, width: int) -> list[tuple[int, int]]:
        """The feature map ``(H, W)`` after each conv; raises where the images run out."""
        padding, sizes = self._padding(arch), []
        for i in range(1, self._layers(arch) + 1):
            if padding == "valid" and min(height, width) < CNN_KERNEL:
                raise ValueError(
                    f"smallcnn: the {height}x{width} map before conv {i} is smaller than its "
                    f"{CNN_KERNEL}x{CNN_KERNEL} kernel (valid padding, stride "
                    f"{SMALLCNN_STRIDE}); use fewer layers or padding: same"
                )
            height, width = (conv_out(n, padding) for n in (height, width))
            sizes.append((height, width))
        return sizes

    def param_shapes(self, arch, input_shape, num_classes):
        c_in, height, width = input_shape
        self.map_sizes(arch, height, width)
        c, k = arch["channels"], CNN_KERNEL
        shapes = {}
        for i in range(1, self._layers(arch) + 1):
            shapes[f"conv{i}.weight"] = (c, c_in if i == 1 else c, k, k)
            shapes[f"conv{i}.bias"] = (c,)
        shapes["fc.weight"] = (num_classes, c)
        shapes["fc.bias"] = (num_classes,)
        return shapes

    def layers(self, arch):
        convs = [
            LayerInfo(f"conv{i}.weight", f"Conv{i}", (1, 2, 3))
            for i in range(1, self._layers(arch) + 1)
        ]
        return [*convs, LayerInfo("fc.weight", "FC", (1,))]


def conv_out(n: int, padding: str) -> int:
    """Output length of a 3-wide, stride-2 conv over ``n`` (Keras' valid and same)."""
    if padding == "same":
        return -(-n // SMALLCNN_STRIDE)
    return (n - CNN_KERNEL) // SMALLCNN_STRIDE + 1


def same_padding(n: int) -> tuple[int, int]:
    """Keras' ``same`` padding of a 3-wide, stride-2 conv over ``n``: (before, after), the
    odd one after, as TensorFlow pads."""
    total = max((conv_out(n, "same") - 1) * SMALLCNN_STRIDE + CNN_KERNEL - n, 0)
    return total // 2, total - total // 2


VIT_KEYS = ("d_model", "nhead", "patch", "dim_feedforward")


class ViTShapes(FamilyShapes):
    name = "vit"

    def arch_name(self, arch: Mapping) -> str:
        d, h, p, f = (arch[k] for k in VIT_KEYS)
        return f"d{d}-h{h}-p{p}-f{f}"

    @staticmethod
    def _check(arch: Mapping, input_shape) -> int:
        """Number of tokens; raises where the arch does not fit the input."""
        _, height, width = input_shape
        d, h, p, _ = (arch[k] for k in VIT_KEYS)
        if d % h:
            raise ValueError(f"ViT d_model {d} is not divisible by nhead {h}")
        if height % p or width % p:
            raise ValueError(f"ViT patch {p} does not tile {height}x{width} images")
        return (height // p) * (width // p)

    def param_shapes(self, arch, input_shape, num_classes):
        n_tokens = self._check(arch, input_shape)
        d, _, p, f = (arch[k] for k in VIT_KEYS)
        return {
            "patch.weight": (d, input_shape[0] * p * p),
            "patch.bias": (d,),
            "pos_embedding": (n_tokens, d),
            "encoder.self_attn.in_proj_weight": (3 * d, d),
            "encoder.self_attn.in_proj_bias": (3 * d,),
            "encoder.self_attn.out_proj.weight": (d, d),
            "encoder.self_attn.out_proj.bias": (d,),
            "encoder.linear1.weight": (f, d),
            "encoder.linear1.bias": (f,),
            "encoder.linear2.weight": (d, f),
            "encoder.linear2.bias": (d,),
            "encoder.norm1.weight": (d,),
            "encoder.norm1.bias": (d,),
            "encoder.norm2.weight": (d,),
            "encoder.norm2.bias": (d,),
            "head.weight": (num_classes, d),
            "head.bias": (num_classes,),
        }

    def layers(self, arch):
        return [
            LayerInfo("encoder.self_attn.in_proj_weight", "attn in", (1,)),
            LayerInfo("encoder.self_attn.out_proj.weight", "attn out", (1,)),
            LayerInfo("encoder.linear1.weight", "MLP 1", (1,)),
            LayerInfo("encoder.linear2.weight", "MLP 2", (1,)),
            LayerInfo("head.weight", "head", (1,)),
        ]

    def linear_weights(self, arch):
        return ("patch.weight", *(layer.param for layer in self.layers(arch)))


GENERIC_WEIGHT_SUFFIXES = (".weight", "in_proj_weight")
FORWARD_NEEDS_MODEL = (
    "a zoo of the 'generic' family (imported: weightzoo knows its parameters, not the "
    "network that computes with them) has no forward pass of its own; name the model "
    "class that built the weights, `--model package.module:Class` (with `--model-args "
    "JSON` for its constructor), see docs/import.md"
)


class GenericShapes(FamilyShapes):
    """Any state dict: the family of imported zoos (docs/import.md).

    The architecture is the state dict's own list of parameters, ``{"label": str | None,
    "parameters": [[name, [d0, d1, ...]], ...]}`` in state-dict order (per-trial shapes).
    Its layers are read from names and shapes, not from a model family: every parameter of
    two or more axes whose name ends in ``.weight`` or ``in_proj_weight`` (a linear or
    attention projection ``[out, in]``, a conv kernel ``[out, in, *kernel]``: a node is an
    output row or kernel, its strength the sum over the other axes). Biases and
    normalisation parameters (one axis) are never layers; a layer's bias is found by name
    (``x.weight`` -> ``x.bias``). A layer's label is its name without ``.weight``, so layers
    of different architectures with one name are one layer to the analyses."""

    name = "generic"

    @staticmethod
    def parameters(arch: Mapping) -> list[tuple[str, tuple[int, ...]]]:
        """``[(name, per-trial shape)]`` in state-dict order, or an error naming the key."""
        try:
            return [(str(name), tuple(int(d) for d in shape)) for name, shape in arch["parameters"]]
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                "a generic architecture needs 'parameters': [[name, [d0, d1, ...]], ...] "
                f"(the state dict's names and shapes); got {dict(arch)!r}"
            ) from None

    def arch_name(self, arch: Mapping) -> str:
        """The label made filename-safe, else ``g`` + 8 hex digits of the SHA-256 of the
        canonical JSON of ``parameters`` (one name per shape signature)."""
        label = arch.get("label")
        if label:
            return re.sub(r"[^A-Za-z0-9._-]+", "_", str(label)).strip("._") or "arch"
        signature = [[name, list(shape)] for name, shape in self.parameters(arch)]
        canonical = json.dumps(signature, separators=(",", ":"))
        return "g" + hashlib.sha256(canonical.encode()).hexdigest()[:8]

    def param_shapes(self, arch, input_shape=None, num_classes=None):
        """The state dict's shapes (``input_shape`` and ``num_classes`` play no part)."""
        return dict(self.parameters(arch))

    def layers(self, arch):
        return [
            LayerInfo(name, generic_label(name), tuple(range(1, len(shape))))
            for name, shape in self.parameters(arch)
            if len(shape) >= 2 and name.endswith(GENERIC_WEIGHT_SUFFIXES)
        ]


def generic_label(param: str) -> str:
    """A generic layer's label: its parameter name without the trailing ``.weight``
    (``0.weight`` -> ``0``, ``features.3.weight`` -> ``features.3``)."""
    return param[: -len(".weight")] if param.endswith(".weight") else param


SHAPES: dict[str, FamilyShapes] = {
    "dnn": DNNShapes(),
    "cnn": CNNShapes(),
    "vit": ViTShapes(),
    "smallcnn": SmallCNNShapes(),
    "generic": GenericShapes(),
}
# the families whose trials may run as a per-trial loop or one grouped conv (training.strategy)
STRATEGY_MODELS = ("cnn", "smallcnn")


def get_shapes(name: str) -> FamilyShapes:
    """The architecture side of model ``name`` (what :func:`weightzoo.train.models.get_family`
    returns, less the computing)."""
    try:
        return SHAPES[name]
    except KeyError:
        known = ", ".join(sorted(SHAPES))
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None


def check_strategy(name: str, strategy: str) -> None:
    """``training.strategy`` other than ``auto`` applies to the conv models only."""
    if name not in STRATEGY_MODELS and strategy != "auto":
        raise ValueError(
            f"training.strategy {strategy!r} applies to the CNN only (models "
            f"{', '.join(STRATEGY_MODELS)}); set it to 'auto' for the {name!r} experiments "
            "(or in the CNN experiment's own training: block)"
        )
