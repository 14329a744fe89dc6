"""Raw dataset sources: find, verify and parse the raw files, download them if allowed, and
write the prepared .npz (:func:`prepare_dataset`).

Raw files of the torchvision datasets are looked up in this order:

1. ``data_dir`` (config ``data.data_dir``), flat or in torchvision's layout below it
   (``MNIST/raw``, ``FashionMNIST/raw``, ``cifar-10-batches-py``);
2. system folders (``SYSTEM_DATA_DIRS``; the Debian package ``dataset-fashion-mnist``);
3. a download with torchvision's own URL/md5 lists into torchvision's layout under ``data_dir``.

Verification (``verify_checksums=True``): files whose name is in torchvision's md5 tables are
checked by md5; every dataset must then also have its official split sizes (this is the content
check for sources without a usable md5, e.g. Debian's re-gzipped Fashion-MNIST). Structural
checks (magic numbers, byte counts, shapes, label range) always run.

torchvision and scikit-learn are imported lazily.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import pickle
import socket
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .catalog import (
    CIFAR_TEST_FILE,
    CIFAR_TRAIN_FILES,
    IDX_STEMS,
    IMAGE_SHAPES,
    NUM_CLASSES,
    TORCHVISION_SUBDIRS,
    check_dataset_name,
    required_files,
)
from .prepared import CorruptDatasetError, PreparedData, check_split_sizes, write_prepared

# Folders where system packages put raw files (tests monkeypatch this).
SYSTEM_DATA_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}

IDX_IMAGES_MAGIC = 0x00000803  # 0x08 = unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # 0x08 = unsigned byte, 1 dimension

DOWNLOAD_TIMEOUT_S = 20.0  # per socket operation, so a blackholed network cannot hang a job

Log = Callable[[str], object]


class DatasetUnavailableError(RuntimeError):
    """The raw files were found nowhere and could not be downloaded."""


class DownloadError(RuntimeError):
    """Every mirror failed for a file."""


# --------------------------------------------------------------------------- public API


def prepare_dataset(
    name: str,
    out_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    verify_checksums: bool = True,
    log: Log = print,
) -> PreparedData:
    """Read and validate dataset ``name`` and write it atomically to ``out_path`` (.npz)."""
    data = read_raw(name, data_dir, download=download, verify_checksums=verify_checksums, log=log)
    write_prepared(data, out_path)
    log(
        f"{name}: wrote {out_path} (train {data.x_train.shape}, test {data.x_test.shape}, "
        f"source {data.source})"
    )
    return data


def read_raw(
    name: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    verify_checksums: bool = True,
    log: Log = print,
) -> PreparedData:
    """Locate, verify and parse the raw files of dataset ``name`` (writes nothing but downloads)."""
    check_dataset_name(name)
    if name == "digits":
        data = read_digits()
    else:
        data = _read_torchvision_dataset(name, data_dir, download, verify_checksums, log)
    check_split_sizes(data, strict=verify_checksums)
    return data


def expected_md5(name: str) -> dict[str, str]:
    """File name -> md5 from torchvision's tables (empty for digits)."""
    check_dataset_name(name)
    if name == "digits":
        return {}
    tv = _torchvision_class(name)
    if name == "cifar10":
        return {fname: md5 for fname, md5 in tv.train_list + tv.test_list}
    return dict(tv.resources)


# --------------------------------------------------------------------------- digits


def read_digits() -> PreparedData:
    """scikit-learn digits with the fixed stratified split: 1347 train / 450 test, [N,1,8,8]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None]  # float 0..16 [1797,8,8] -> uint8 [1797,1,8,8]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return PreparedData(
        x_train=np.ascontiguousarray(x_train),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test,
        pixel_max=16,
        name="digits",
        source="sklearn.datasets.load_digits",
    )


# --------------------------------------------------------------------------- lookup


@dataclass
class _Location:
    directory: Path
    kind: str  # "data_dir" (md5-checkable) or "system" (content-checked only)


def _candidate_locations(name: str, data_dir: Path | None) -> list[_Location]:
    locations = []
    if data_dir is not None:
        locations.append(_Location(data_dir, "data_dir"))
        locations.append(_Location(data_dir / TORCHVISION_SUBDIRS[name], "data_dir"))
    locations += [_Location(Path(d), "system") for d in SYSTEM_DATA_DIRS.get(name, ())]
    return locations


def _find_files(name: str, directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Return ({role: path} for files present, [missing file names]) in ``directory``."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    if name == "cifar10":
        for fname in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE):
            path = directory / fname
            if path.is_file():
                found[fname] = path
            else:
                missing.append(fname)
        return found, missing
    for role, stem in IDX_STEMS.items():
        path = next((p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()), None)
        if path is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[role] = path
    return found, missing


def _read_torchvision_dataset(
    name: str, data_dir_arg, download: bool, verify_checksums: bool, log: Log
) -> PreparedData:
    data_dir = Path(data_dir_arg).expanduser() if data_dir_arg is not None else None
    report: list[str] = []  # one line per place looked at, for the "unavailable" message

    data = _read_first_complete_location(name, data_dir, verify_checksums, log, report)
    if data is not None:
        return data

    if not download:
        download_note = "downloading is disabled (config key data.download is false)"
    elif data_dir is None:
        download_note = (
            "cannot download: no target folder; set data.data_dir in the config "
            "(files are downloaded into it)"
        )
    else:
        try:
            download_raw(name, data_dir, log)
        except Exception as e:  # any network/IO/md5 failure ends up in the message
            download_note = f"download into {data_dir} failed: {type(e).__name__}: {e}"
        else:
            report.append("(after download)")
            data = _read_first_complete_location(name, data_dir, verify_checksums, log, report)
            if data is not None:
                data.source += " (downloaded)"
                return data
            download_note = f"download into {data_dir} reported success but files are missing"
    raise DatasetUnavailableError(_unavailable_message(name, data_dir, report, download_note))


def _read_first_complete_location(
    name: str, data_dir: Path | None, verify_checksums: bool, log: Log, report: list[str]
) -> PreparedData | None:
    for location in _candidate_locations(name, data_dir):
        found, missing = _find_files(name, location.directory)
        if missing:
            if not location.directory.is_dir():
                state = "does not exist"
            elif not found:
                state = "no dataset files"
            else:
                state = f"incomplete, missing {', '.join(missing)}"
            report.append(f"{location.directory} ({state})")
            continue
        check_md5 = verify_checksums and location.kind == "data_dir"
        if check_md5:
            # md5 before parsing: CIFAR batches are pickles, only unpickle verified files.
            _verify_md5(name, found.values())
        data = _parse_files(name, found)
        data.source = str(location.directory)
        how = "md5 verified" if check_md5 else "content checked"
        log(f"{name}: reading raw files from {location.directory} ({how})")
        return data
    return None


def _unavailable_message(
    name: str, data_dir: Path | None, report: list[str], download_note: str
) -> str:
    looked = "\n".join(f"  - {line}" for line in report) or "  - nowhere (data.data_dir not set)"
    target = (data_dir or Path("<data.data_dir>")) / TORCHVISION_SUBDIRS[name]
    how = (
        f"To provide the files: put {', '.join(required_files(name))} into {target}/ "
        f"(set data.data_dir in the config), or enable data.download on a machine with network "
        "access."
    )
    if name != "cifar10":
        how += " Uncompressed IDX files (without .gz) are accepted too."
    if name == "fashion-mnist":
        how += (
            " Or run `apt-get install dataset-fashion-mnist` (files land in /usr/share/datasets/)."
        )
    return f"dataset {name!r} not found. Looked in:\n{looked}\n{download_note}.\n{how}"


# --------------------------------------------------------------------------- checks


def _verify_md5(name: str, paths) -> None:
    from torchvision.datasets.utils import calculate_md5, check_integrity

    table = expected_md5(name)
    for path in paths:
        md5 = table.get(path.name)
        if md5 is None:  # uncompressed IDX: no official md5, the split-size check covers it
            continue
        if not check_integrity(path, md5):
            raise CorruptDatasetError(
                f"{path}: md5 mismatch (expected {md5}, got {calculate_md5(path)}). The file "
                f"is truncated or not the official {name} file: delete it and re-download "
                "(data.download: true), or set data.verify_checksums: false to trust local files."
            )


def _check_labels(labels: np.ndarray, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise CorruptDatasetError(
            f"{path}: labels must be in 0..{NUM_CLASSES - 1}, found {labels.min()}..{labels.max()}"
        )


# --------------------------------------------------------------------------- IDX


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise CorruptDatasetError(f"{path}: cannot decompress ({e}); truncated or not gzip") from e


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Parse one IDX file (big-endian header: magic, one uint32 per dim; then uint8 data)."""
    path = Path(path)
    raw = _read_bytes(path)
    ndim = expected_magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise CorruptDatasetError(
            f"{path}: truncated IDX header ({len(raw)} bytes, expected at least {header_len})"
        )
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise CorruptDatasetError(
            f"{path}: wrong IDX magic number 0x{magic:08x}, expected 0x{expected_magic:08x}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected_len = header_len + int(np.prod(dims))
    if len(raw) != expected_len:
        what = "truncated" if len(raw) < expected_len else "has trailing bytes"
        raise CorruptDatasetError(
            f"{path}: IDX file {what}: header says {dims} -> expected {expected_len} bytes, "
            f"got {len(raw)} (uncompressed)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def _read_idx_split(
    images_path: Path, labels_path: Path, image_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, IDX_IMAGES_MAGIC)  # [N, H, W]
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)  # [N]
    if images.shape[1:] != image_hw:
        raise CorruptDatasetError(
            f"{images_path}: images are {images.shape[1:]}, expected {image_hw}"
        )
    if len(images) != len(labels):
        raise CorruptDatasetError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    _check_labels(labels, labels_path)
    return images[:, None], labels.astype(np.int64)  # [N,1,H,W], [N]


# --------------------------------------------------------------------------- CIFAR-10


def _batch_entry(batch: dict, key: str):
    # The official batches were pickled by Python 2 with str keys; loaded with
    # encoding="latin1" they come back as str, with encoding="bytes" as bytes. Accept both.
    for k in (key, key.encode()):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch -> (uint8 [N,3,32,32], int64 [N])."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")  # same as torchvision's CIFAR10
        data = np.asarray(_batch_entry(batch, "data"))
        labels = np.asarray(_batch_entry(batch, "labels"), dtype=np.int64)
    except Exception as e:  # unpickling garbage can raise almost anything
        raise CorruptDatasetError(
            f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})"
        ) from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CorruptDatasetError(
            f"{path}: 'data' must be uint8 [N, 3072], got {data.dtype} {data.shape}"
        )
    if labels.shape != (len(data),):
        raise CorruptDatasetError(
            f"{path}: {len(data)} images but 'labels' has shape {labels.shape}"
        )
    _check_labels(labels, path)
    return data.reshape(-1, 3, 32, 32), labels  # rows are R(1024) G(1024) B(1024): CHW


# --------------------------------------------------------------------------- parsing


def _parse_files(name: str, files: dict[str, Path]) -> PreparedData:
    if name == "cifar10":
        train = [read_cifar_batch(files[f]) for f in CIFAR_TRAIN_FILES]
        x_test, y_test = read_cifar_batch(files[CIFAR_TEST_FILE])
        x_train = np.concatenate([x for x, _ in train])
        y_train = np.concatenate([y for _, y in train])
    else:
        hw = IMAGE_SHAPES[name][1:]
        x_train, y_train = _read_idx_split(files["train_images"], files["train_labels"], hw)
        x_test, y_test = _read_idx_split(files["test_images"], files["test_labels"], hw)
    return PreparedData(x_train, y_train, x_test, y_test, pixel_max=255, name=name)


# --------------------------------------------------------------------------- download


def _torchvision_class(name: str):
    from torchvision import datasets

    classes = {
        "mnist": datasets.MNIST,
        "fashion-mnist": datasets.FashionMNIST,
        "cifar10": datasets.CIFAR10,
    }
    return classes[name]


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # urllib in torchvision opens sockets without a timeout; the default applies to them.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_raw(name: str, data_dir: str | os.PathLike, log: Log = print) -> None:
    """Download the raw files with torchvision's URL/md5 lists into torchvision's layout."""
    data_dir = Path(data_dir)
    with _socket_timeout(DOWNLOAD_TIMEOUT_S):
        if name == "cifar10":
            _download_cifar10(data_dir, log)
        else:
            _download_idx(name, data_dir / TORCHVISION_SUBDIRS[name], log)


def _download_idx(name: str, raw_dir: Path, log: Log) -> None:
    from torchvision.datasets import utils as tv_utils

    tv = _torchvision_class(name)
    for filename, md5 in tv.resources:
        if tv_utils.check_integrity(raw_dir / filename, md5):
            continue
        errors = []
        for mirror in tv.mirrors:
            log(f"{name}: downloading {mirror}{filename} -> {raw_dir}")
            try:
                with _removed_if_invalid_on_error(raw_dir / filename, md5):
                    tv_utils.download_url(f"{mirror}{filename}", raw_dir, filename, md5)
                break
            except Exception as e:
                errors.append(f"{mirror}{filename}: {type(e).__name__}: {e}")
        else:
            raise DownloadError("; ".join(errors))


def _download_cifar10(data_dir: Path, log: Log) -> None:
    from torchvision.datasets import utils as tv_utils

    tv = _torchvision_class("cifar10")
    log(f"cifar10: downloading {tv.url} -> {data_dir}")
    # A partly extracted folder heals itself: the next run finds files missing, the verified
    # archive is kept, so only the extraction is repeated.
    with _removed_if_invalid_on_error(data_dir / tv.filename, tv.tgz_md5):
        tv_utils.download_and_extract_archive(
            tv.url, data_dir, filename=tv.filename, md5=tv.tgz_md5
        )


@contextlib.contextmanager
def _removed_if_invalid_on_error(target: Path, md5: str) -> Iterator[None]:
    """If the download fails, delete a partial/corrupt ``target`` so nothing half-done stays."""
    from torchvision.datasets.utils import check_integrity

    try:
        yield
    except BaseException:
        if target.exists() and not check_integrity(target, md5):
            target.unlink()
        raise
