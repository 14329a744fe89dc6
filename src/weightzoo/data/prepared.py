"""Prepared datasets: one compact uncompressed .npz per dataset (uint8 images [N, C, H, W],
int64 labels), written atomically and checked when read back.

Needs numpy only: ``load_prepared`` is all most jobs need; reading the raw files
(torchvision, scikit-learn) lives in :mod:`weightzoo.data.sources`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from weightzoo.io import atomic_output

from .catalog import IMAGE_SHAPES, NUM_CLASSES, OFFICIAL_SPLIT_SIZES

PREPARED_FORMAT = "weightzoo-prepared-v1"


class CorruptDatasetError(ValueError):
    """Files were found but are truncated, have a wrong magic, checksum or shape."""


@dataclass
class PreparedData:
    x_train: np.ndarray  # uint8 [N, C, H, W]
    y_train: np.ndarray  # int64 [N], 0..num_classes-1
    x_test: np.ndarray  # uint8 [M, C, H, W]
    y_test: np.ndarray  # int64 [M]
    pixel_max: int  # 16 for digits, 255 otherwise; training scales x / pixel_max
    name: str
    num_classes: int = NUM_CLASSES
    source: str = ""  # where the raw files came from (for logs)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.x_train.shape[1:])


def load_prepared(path: str | os.PathLike) -> PreparedData:
    """Read a .npz written by ``prepare_dataset``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prepared dataset {path} does not exist (run the prepare step)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as e:  # not a zip / not .npy members / pickled objects: ValueError, BadZipFile
        raise CorruptDatasetError(f"{path} is not a prepared weightzoo dataset: {e}") from e
    required = {"format", "x_train", "y_train", "x_test", "y_test", "pixel_max", "name"}
    missing = sorted(required - arrays.keys())
    if missing or str(arrays["format"]) != PREPARED_FORMAT:
        raise CorruptDatasetError(
            f"{path} is not a prepared weightzoo dataset (format {PREPARED_FORMAT!r}); "
            f"missing keys: {missing or 'none'}, format: {arrays.get('format')!r}"
        )
    data = PreparedData(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        pixel_max=int(arrays["pixel_max"]),
        name=str(arrays["name"]),
        num_classes=int(arrays.get("num_classes", NUM_CLASSES)),
        source=str(arrays.get("source", "")),
    )
    _check_prepared_arrays(data, path)
    return data


def write_prepared(data: PreparedData, out_path: str | os.PathLike) -> None:
    """Write ``data`` as an uncompressed .npz; the final name appears only when complete."""
    _check_prepared_arrays(data, Path(out_path))
    with atomic_output(out_path) as tmp, open(tmp, "wb") as fh:
        # A file object (not a name) so np.savez never appends ".npz" to an unusual suffix.
        np.savez(
            fh,
            format=np.array(PREPARED_FORMAT),
            x_train=data.x_train,
            y_train=data.y_train,
            x_test=data.x_test,
            y_test=data.y_test,
            pixel_max=np.array(data.pixel_max, dtype=np.int64),
            name=np.array(data.name),
            num_classes=np.array(data.num_classes, dtype=np.int64),
            source=np.array(data.source),
        )


def check_split_sizes(data: PreparedData, strict: bool) -> None:
    """Image shape always; official train/test sizes only when ``strict`` (verification on)."""
    expected_shape = IMAGE_SHAPES[data.name]
    for split, x in (("train", data.x_train), ("test", data.x_test)):
        if x.shape[1:] != expected_shape:
            raise CorruptDatasetError(
                f"{data.name} ({data.source}): {split} images have shape {x.shape[1:]}, "
                f"expected {expected_shape}"
            )
    sizes = (len(data.x_train), len(data.x_test))
    if strict and sizes != OFFICIAL_SPLIT_SIZES[data.name]:
        raise CorruptDatasetError(
            f"{data.name} ({data.source}): found {sizes[0]} train / {sizes[1]} test images, "
            f"expected {OFFICIAL_SPLIT_SIZES[data.name]}; the files are incomplete or not the "
            "official dataset (set data.verify_checksums: false to use them anyway)"
        )


def _check_prepared_arrays(data: PreparedData, path: Path) -> None:
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if x.dtype != np.uint8 or x.ndim != 4:
            raise CorruptDatasetError(
                f"{path}: x_{split} must be uint8 [N,C,H,W], got {x.dtype} {x.shape}"
            )
        if y.dtype != np.int64 or y.shape != (len(x),):
            raise CorruptDatasetError(
                f"{path}: y_{split} must be int64 [{len(x)}], got {y.dtype} {y.shape}"
            )
