"""One trial's state dict from a file, loaded without running code from it.

``torch.save`` files load with ``torch.load(..., weights_only=True)``: a pickle that holds
anything but tensors and plain containers (a model object, a custom class) is refused, so
a zoo from elsewhere can never run code here. ``.safetensors`` files hold tensors only.
Each file is read once: its bytes are hashed for the provenance and loaded from memory.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .errors import ZooImportError

# what torch's weights-only unpickler says of a pickle that names code (a class, a function)
UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")
UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", re.S)
# float16 and bfloat16 widen to float32 exactly; integer tensors are refused by name
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ZooImportError(
            f"{what}: {path}: no such file; fix the path in the table or add the file"
        ) from None
    except OSError as e:
        raise ZooImportError(f"{what}: {path}: cannot be read ({e.strerror or e})") from None


def load_state_dict(path: Path, what: str) -> tuple[dict[str, np.ndarray], str]:
    """``({name: array}, sha256 of the file)`` in the file's order; ``what`` names where
    the file was asked for (a CSV row) in every error."""
    data = read_bytes(path, what)
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix == ".safetensors":
        state = _load_safetensors(data, path, what)
    else:
        state = _load_torch(data, path, what)
    return to_arrays(state, path, what), digest


def _load_torch(data: bytes, path: Path, what: str):
    import torch

    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        code = UNSUPPORTED_GLOBAL.search(str(e))
        if code is None:  # not a pickle weightzoo can read at all
            detail = UNPICKLER_ERROR.search(str(e))
            raise ZooImportError(
                f"{what}: {path}: unreadable as a torch.save file "
                f"({detail.group(1).strip() if detail else type(e).__name__}); write it again "
                "with torch.save(model.state_dict(), path)"
            ) from None
        raise ZooImportError(
            f"{what}: {path}: refused: not a weights-only file (it pickles {code.group(1)}, "
            "which loading would import and run); weightzoo never runs code from a zoo: "
            "save the model's state_dict() (tensors only), torch.save(model.state_dict(), "
            "path), or a .safetensors file"
        ) from None
    except Exception as e:  # a damaged or foreign file
        raise ZooImportError(
            f"{what}: {path}: unreadable as a torch.save file ({type(e).__name__}: {e}); "
            "write it again with torch.save(model.state_dict(), path)"
        ) from None


def _load_safetensors(data: bytes, path: Path, what: str):
    try:
        from safetensors.torch import load
    except ImportError:  # pragma: no cover - a dependency of weightwatcher, always there
        raise ZooImportError(
            f"{what}: {path}: reading .safetensors needs the package safetensors "
            "(pip install safetensors)"
        ) from None
    try:
        return load(data)
    except Exception as e:
        raise ZooImportError(
            f"{what}: {path}: unreadable as a .safetensors file ({type(e).__name__}: {e})"
        ) from None


def to_arrays(state, path: Path, what: str) -> dict[str, np.ndarray]:
    """A loaded state dict as numpy arrays; anything but a flat ``{str: tensor}`` of one
    float dtype is an error naming the key."""
    import torch

    if not isinstance(state, Mapping):
        raise ZooImportError(
            f"{what}: {path}: holds a {type(state).__name__}, not a state dict "
            "({name: tensor}); save model.state_dict()"
        )
    if not state:
        raise ZooImportError(f"{what}: {path}: an empty state dict")
    out = {}
    dtypes = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ZooImportError(
                f"{what}: {path}: key {name!r} holds a {type(value).__name__}, not a "
                "tensor; save the model's state_dict() itself (not a dict of model, "
                "optimizer, ...)"
            )
        dtype = str(value.dtype).removeprefix("torch.")
        if dtype not in FLOAT_DTYPES:
            raise ZooImportError(
                f"{what}: {path}: key {name!r} is {dtype}; a zoo holds floating-point "
                "weights only: drop integer buffers (such as BatchNorm's "
                "num_batches_tracked) from the state dicts before importing"
            )
        dtypes[name] = dtype
        wide = value.detach().to(torch.float32) if dtype in ("float16", "bfloat16") else value
        out[str(name)] = wide.detach().cpu().numpy()
    if len({"float64" if d == "float64" else "float32" for d in dtypes.values()}) > 1:
        raise ZooImportError(
            f"{what}: {path}: mixed dtypes ({', '.join(f'{k}: {v}' for k, v in dtypes.items())}); "
            "save every parameter in one dtype (model.float() or model.double())"
        )
    return out
