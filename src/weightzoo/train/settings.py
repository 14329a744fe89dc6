"""The training settings of one job, and the single place their defaults are written.

:class:`TrainSettings` holds the paper's settings (Table 1) and the execution choices of a
training job; its field defaults are the ``training:`` defaults of every config
(weightzoo.config.DEFAULTS derives them from here, and ``config/config.yaml`` documents the
same values: tests/test_config.py checks they agree). No torch here: config validation
builds these while Snakemake plans the jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# training.dtype names; TrainSettings.torch_dtype maps them to torch's
DTYPE_NAMES = ("float32", "float64")


@dataclass(frozen=True)
class TrainSettings:
    """The paper's training settings (Table 1) plus execution choices."""

    epochs: int = 20
    batch_size: int = 100
    lr: float = 1e-3
    init_std: float = 1.0
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

    @property
    def torch_dtype(self):
        """``dtype`` as a ``torch.dtype`` (imports torch: the training job's side only)."""
        import torch

        return getattr(torch, self.dtype)

    def as_dict(self) -> dict:
        return asdict(self)


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
