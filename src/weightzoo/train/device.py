"""The training device: which one ``auto`` finds, what it can hold, and what it guarantees.

Per device (docs/gpu.md says the same for users):

* **CPU**: a trial's weights and metrics are bit-identical alone or in any ensemble
  (tests/test_trainer.py, tests/test_models.py). Nothing is changed from torch's defaults.
* **CUDA**: deterministic mode (:func:`apply_device_settings`): a rerun or retry of a job
  gives bit-identical weights. cuBLAS picks its kernels by problem shape (one trial runs
  ``gemm``, several ``bgemm``), so alone vs ensemble agree only within a tolerance
  (tests/gpu checks it). float32 matmuls and convolutions run in full precision unless
  ``training.allow_tf32: true``.
* **MPS** (Apple): no float64 (rejected by config validation), the CNN's ``auto`` strategy
  is the per-trial loop (grouped convs with one input channel per group have had reported
  wrong results there), arrays are limited to 2**32 bytes. Neither determinism nor
  alone-vs-ensemble equality is promised.

What was set is recorded in every job's HDF5 settings (``device_settings``).

Process-wide settings of the CPU side live here too: MKL's strict mode check
(:func:`warn_if_blas_depends_on_alignment`) and glibc's allocator tuning
(:func:`keep_freed_memory_mapped`); neither changes a result.
"""

from __future__ import annotations

import logging
import os

import torch

from .settings import dtype_device_error

log = logging.getLogger(__name__)

# Apple's Metal refuses (aborts, not raises) a single buffer above 4 GiB
MPS_MAX_ARRAY_BYTES = 2**32
# the value torch documents for deterministic cuBLAS (":16:8" also works, slower)
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


class DeviceError(ValueError):
    """A device request that cannot run; the message names the keys to change."""


def mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def has_float64(device: torch.device | str) -> bool:
    """Whether ``device`` has float64 tensors (MPS has none)."""
    return torch.device(device).type != "mps"


def accumulator_dtype(device: torch.device | str) -> torch.dtype:
    """dtype of the loss/accuracy sums on ``device``: float64 where it exists, else float32."""
    return torch.float64 if has_float64(device) else torch.float32


def resolve_device(name: str, dtype: str = "float32") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; a device that cannot run ``dtype``
    (float64 on MPS) raises :class:`DeviceError` naming both keys."""
    if name != "auto":
        device = torch.device(name)
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif mps_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    error = dtype_device_error(dtype, name, device.type, has_float64(device))
    if error:
        raise DeviceError(error)
    return device


# oneMKL's strict conditional numerical reproducibility (weightzoo/__init__.py sets it): gemm
# results that do not depend on the operands' memory alignment or the thread count. Without
# it, the weight gradient of a DNN layer with 5 inputs differed in the last bits between a
# trial alone and the same trial as the second of an ensemble (its block 2000 bytes into
# the stacked tensor). Its cost on a 784-100-100-10 DNN step was within this machine's
# run-to-run noise (0-7 % in paired runs).
MKL_CBWR = "AUTO,STRICT"
_BLAS_PROBE: list[bool] = []


def blas_alignment_independent() -> bool:
    """Whether this process's CPU matmuls give a trial the same bits wherever its block sits
    in a stacked tensor: probed once on the shape that showed the difference."""
    if not _BLAS_PROBE:
        g = torch.Generator().manual_seed(0)
        h = torch.randn(2, 100, 5, generator=g).relu()  # [T, B, in]; trial 1 at byte 2000
        grad = torch.randn(2, 100, 10, generator=g)  # [T, B, out]
        together = torch.bmm(h.transpose(1, 2), grad)  # [T, in, out]
        alone = torch.bmm(h[1:].clone().transpose(1, 2), grad[1:].clone())  # [1, in, out]
        _BLAS_PROBE.append(torch.equal(together[1], alone[0]))
    return _BLAS_PROBE[0]


_WARNED_BLAS = []


def warn_if_blas_depends_on_alignment() -> None:
    """Warn once when MKL's strict mode is not in effect (weightzoo.train.device.MKL_CBWR)."""
    if _WARNED_BLAS or blas_alignment_independent():
        return
    _WARNED_BLAS.append(True)
    log.warning(
        "MKL_CBWR=%r: this process's matmuls depend on memory alignment, so a trial may "
        "differ in the last bits alone and in an ensemble. Set MKL_CBWR=%s in the "
        "environment (or import weightzoo before torch first multiplies matrices).",
        os.environ.get("MKL_CBWR", ""),
        MKL_CBWR,
    )


def device_settings(device: torch.device | str, allow_tf32: bool = False) -> dict:
    """What :func:`apply_device_settings` sets for ``device`` (pure: changes nothing)."""
    device = torch.device(device)
    settings = {
        "device_type": device.type,
        "accumulator_dtype": str(accumulator_dtype(device)).removeprefix("torch."),
    }
    if device.type == "cuda":
        precision = "tf32" if allow_tf32 else "ieee"
        settings.update(
            deterministic_algorithms=True,
            cudnn_benchmark=False,
            cudnn_deterministic=True,
            matmul_fp32_precision=precision,
            cudnn_conv_fp32_precision=precision,
            # flash / memory-efficient attention backward use atomics; the math kernel
            # is plain matmuls (16 tokens per image here: cheap)
            sdpa_backends="math",
            cublas_workspace_config=os.environ.get(
                "CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG
            ),
            guarantee="rerun bit-identical; alone vs ensemble within tolerance",
        )
    elif device.type == "mps":
        settings.update(
            deterministic_algorithms=False,
            max_array_bytes=MPS_MAX_ARRAY_BYTES,
            guarantee="none beyond float32 results (no float64, no determinism promised)",
        )
    elif device.type == "cpu":
        exact = blas_alignment_independent()
        settings.update(
            deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
            mkl_cbwr=os.environ.get("MKL_CBWR", ""),
            blas_alignment_independent=exact,
            guarantee="bit-identical alone or in any ensemble"
            if exact
            else "rerun bit-identical; alone vs ensemble may differ in the last bits",
        )
    else:
        settings.update(
            deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
            guarantee="none",
        )
    return settings


def apply_device_settings(device: torch.device | str, allow_tf32: bool = False) -> dict:
    """Set the process-wide flags :func:`device_settings` describes; returns that record.

    Call it before the first CUDA op of the process: cuBLAS reads
    ``CUBLAS_WORKSPACE_CONFIG`` when it creates its handle. CPU and MPS: nothing is set."""
    settings = device_settings(device, allow_tf32)
    if settings["device_type"] == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        # the fp32_precision API only: torch refuses a mix with the legacy allow_tf32 flags
        torch.backends.cuda.matmul.fp32_precision = settings["matmul_fp32_precision"]
        torch.backends.cudnn.conv.fp32_precision = settings["cudnn_conv_fp32_precision"]
        torch.backends.cuda.enable_flash_sdp(False)
        torch.backends.cuda.enable_mem_efficient_sdp(False)
        torch.backends.cuda.enable_cudnn_sdp(False)
        torch.backends.cuda.enable_math_sdp(True)
    return settings


def device_memory_budget(device: torch.device | str, setting: int | str) -> int | None:
    """Bytes a training job may use on ``device``: ``execution.device_memory_mb`` when it is
    a number; ``auto``: 90 % of the GPU's memory (CUDA: total; MPS: Metal's recommended
    maximum), and no limit on the CPU (as before; ``execution.mem_mb`` is the scheduler's)."""
    if setting != "auto":
        return int(setting) << 20
    device = torch.device(device)
    if device.type == "cuda":
        return int(0.9 * torch.cuda.get_device_properties(device).total_memory)
    if device.type == "mps":
        return int(0.9 * torch.mps.recommended_max_memory())
    return None


def max_array_bytes(device: torch.device | str) -> int | None:
    return MPS_MAX_ARRAY_BYTES if torch.device(device).type == "mps" else None


# --------------------------------------------------------------------------- allocator
_MALLOC_TUNED = False


def keep_freed_memory_mapped() -> bool:
    """Ask glibc to keep freed memory in the heap instead of returning it to the kernel.

    Every step frees and re-allocates tensors of tens of MB (the stacked gradients of the
    first layer are ``[T, h1, in]``). By default glibc returns such blocks to the kernel
    and the next step faults fresh pages in again: measured 1.5x slower at 1000 trials
    (benchmarks/README.md). Same effect as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_,
    which must be set before the process starts. A no-op off glibc; never changes results.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        # blocks up to 1 GiB come from the heap (a [1000, 100, 784] float32 gradient is
        # 314 MB), and up to 2 GiB of freed heap stay mapped for the next step
        ok = libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 2 << 30)
    except (OSError, AttributeError):
        return False
    _MALLOC_TUNED = bool(ok)
    return _MALLOC_TUNED
