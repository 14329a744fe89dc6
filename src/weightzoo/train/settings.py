"""The training settings of one job, and the single place their defaults are written.

:class:`TrainSettings` holds the paper's settings (Table 1) and the execution choices of a
training job; its field defaults are the ``training:`` defaults of every config
(weightzoo.config.DEFAULTS derives them from here, and ``config/config.yaml`` documents the
same values: tests/test_config.py checks they agree). No torch here: config validation
builds these while Snakemake plans the jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from .hparams import VARIABLE, HparamError, Spec, parse_spec

# training.dtype names; TrainSettings.torch_dtype maps them to torch's
DTYPE_NAMES = ("float32", "float64")
# the settings that came with per-trial training; at their defaults a job's params omit them
PER_TRIAL_ADDITIONS = (
    "weight_decay",
    "dropout",
    "train_fraction",
    "optimizer",
    "activation",
    "init",
    "replicates",
)
_ABSENT = object()


@dataclass(frozen=True)
class TrainSettings:
    """The paper's training settings (Table 1) plus execution choices."""

    epochs: int = 20
    batch_size: int = 100
    # lr, init_std and the six settings below may each be a distribution instead of one
    # value (weightzoo.train.hparams): every trial then trains its own draw
    lr: float | Mapping = 1e-3
    init_std: float | Mapping = 1.0
    # L2 penalty on every parameter, added to the gradient (torch's weight_decay)
    weight_decay: float | Mapping = 0.0
    # inverted dropout on the hidden activations (weightzoo.train.dropout)
    dropout: float | Mapping = 0.0
    # share of the training set a trial trains on (its own subset, drawn from its seed)
    train_fraction: float | Mapping = 1.0
    optimizer: str | Mapping = "adam"  # adam, sgd_momentum, rmsprop
    activation: str | Mapping = "relu"  # relu, tanh
    init: str | Mapping = "normal"  # normal, truncated_normal, glorot_uniform, he_uniform
    # consecutive trials that share one sampled setting (only their seeds differ)
    replicates: int = 1
    bias_init: str = "normal"  # "normal" (same std as weights) or "zeros"
    dtype: str = "float32"
    device: str = "auto"
    # how the batched model runs its layers (CNN: "loop" or "grouped"); "auto" picks the
    # fastest measured for the device. See models.CNN; DNN and ViT have one way only.
    strategy: str = "auto"
    # memory budget of one evaluation chunk [T, chunk, features]; does not change results
    eval_chunk_mb: int = 64
    # CUDA only: let float32 matmuls and convs use TF32 (faster, ~1e-3 relative error)
    allow_tf32: bool = False
    # epochs (1-based) after which every trial's full weights are kept (/weights/epoch_<k>)
    checkpoint_epochs: tuple[int, ...] = ()

    def __post_init__(self):
        if self.dtype not in DTYPE_NAMES:
            raise ValueError(
                f"training.dtype must be one of {sorted(DTYPE_NAMES)}, got {self.dtype!r}"
            )
        if self.bias_init not in ("normal", "zeros"):
            raise ValueError(
                f"training.bias_init must be 'normal' or 'zeros', got {self.bias_init!r}"
            )
        # a sorted tuple whatever came in (YAML gives a list): settings compare equal
        epochs = tuple(sorted({int(k) for k in self.checkpoint_epochs}))
        outside = [k for k in epochs if not 1 <= k <= self.epochs]
        if outside:
            raise ValueError(
                f"training.checkpoint_epochs: {outside} not in 1..{self.epochs} "
                "(training.epochs); list epochs after which to keep the weights"
            )
        object.__setattr__(self, "checkpoint_epochs", epochs)
        self.spec()  # a bad distribution or value fails here, naming training.<key>
        if isinstance(self.replicates, bool) or not isinstance(self.replicates, int):
            raise HparamError(f"training.replicates: {self.replicates!r} is not an integer >= 1")
        if self.replicates < 1:
            raise HparamError(f"training.replicates: {self.replicates} must be >= 1")

    def spec(self) -> Spec:
        """The settings a trial's training may vary, parsed: fixed values and distributions."""
        return parse_spec({name: getattr(self, name) for name in VARIABLE})

    def varies(self) -> bool:
        """Whether any setting is a distribution (each trial then trains its own draw)."""
        return bool(self.spec().varied())

    @property
    def torch_dtype(self):
        """``dtype`` as a ``torch.dtype`` (imports torch: the training job's side only)."""
        import torch

        return getattr(torch, self.dtype)

    def as_dict(self) -> dict:
        return asdict(self)

    def job_params(self) -> dict:
        """The settings as a training rule's params: the per-trial settings only where they
        differ from their defaults, so a config written before they existed keeps its jobs'
        params, and Snakemake does not retrain its zoos."""
        defaults = {f.name: f.default for f in fields(self) if f.name in PER_TRIAL_ADDITIONS}
        return {k: v for k, v in self.as_dict().items() if defaults.get(k, _ABSENT) != v}


def dtype_device_error(
    dtype: str, name: str, device_type: str, has_float64: bool | None = None
) -> str | None:
    """Why ``training.dtype`` cannot run on the device ``training.device: name`` found
    (of type ``device_type``), or None. ``has_float64``: whether that device has float64
    tensors (weightzoo.train.device.has_float64; unknown: all but Apple MPS have them)."""
    if has_float64 is None:
        has_float64 = device_type != "mps"
    if dtype != "float64" or has_float64:
        return None
    found = f" (training.device: {name} found {device_type})" if name == "auto" else ""
    return (
        f"training.dtype: float64 cannot run on {device_type}{found}: Apple MPS has no "
        "float64. Set training.dtype: float32, or training.device: cpu for float64."
    )


def training_defaults() -> dict:
    """The ``training:`` section's defaults as config data (lists, not tuples)."""
    return {
        f.name: list(f.default) if isinstance(f.default, tuple) else f.default
        for f in fields(TrainSettings)
    }
