"""Tests of the dataset layer with small fake files in the real on-disk formats."""

from __future__ import annotations

import gzip
import hashlib
import pickle
import socket
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from weightzoo.data import prepared, sources
from weightzoo.data.catalog import DATASETS
from weightzoo.data.prepared import CorruptDatasetError, PreparedData, load_prepared
from weightzoo.data.sources import (
    DatasetUnavailableError,
    expected_md5,
    prepare_dataset,
    read_raw,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# --------------------------------------------------------------------------- fake files


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian uint32 dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_file(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
    return path


def write_idx_dataset(directory: Path, n_train=50, n_test=20, gz=True, seed=0, hw=28) -> dict:
    """Write the four IDX files; return the arrays written ([N,H,W] images, [N] labels)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, hw, hw), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, hw, hw), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for role, array in arrays.items():
        write_file(directory / (IDX_NAMES[role] + (".gz" if gz else "")), idx_bytes(array))
    return arrays


def write_cifar_batch(path: Path, data: np.ndarray, labels) -> None:
    # Same structure as the official batches (str keys, uint8 [N, 3072] rows, list of labels).
    batch = {
        "batch_label": path.name,
        "labels": list(labels),
        "data": data,
        "filenames": [f"img_{i}.png" for i in range(len(data))],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(batch, fh, protocol=2)


def write_cifar_dataset(directory: Path, per_batch=4, n_test=6, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    written = {}
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        write_cifar_batch(directory / name, data, labels)
        written[name] = (data, labels)
    return written


def assert_mnist_matches(data: PreparedData, arrays: dict) -> None:
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.x_train[:, 0], arrays["train_images"])
    np.testing.assert_array_equal(data.y_train, arrays["train_labels"])
    np.testing.assert_array_equal(data.x_test[:, 0], arrays["test_images"])
    np.testing.assert_array_equal(data.y_test, arrays["test_labels"])
    assert data.x_train.shape == (len(arrays["train_labels"]), 1, 28, 28)
    assert data.pixel_max == 255 and data.num_classes == 10


def quiet(_msg: str) -> None:
    pass


@pytest.fixture
def no_system_dirs(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {})


# --------------------------------------------------------------------------- names


def test_unknown_dataset_name_lists_known_names(tmp_path):
    with pytest.raises(ValueError, match="svhn") as info:
        read_raw("svhn", tmp_path, download=False, log=quiet)
    for name in DATASETS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="known datasets"):
        prepare_dataset("MNIST", tmp_path / "x.npz", tmp_path, download=False, log=quiet)
    assert not (tmp_path / "x.npz").exists()


def test_expected_md5_comes_from_torchvision_tables():
    import torchvision.datasets as tvd

    assert expected_md5("mnist") == dict(tvd.MNIST.resources)
    assert (
        expected_md5("fashion-mnist")["train-images-idx3-ubyte.gz"]
        == dict(tvd.FashionMNIST.resources)["train-images-idx3-ubyte.gz"]
    )
    cifar = expected_md5("cifar10")
    assert sorted(cifar) == [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    assert expected_md5("digits") == {}


# --------------------------------------------------------------------------- digits


def test_digits_shapes_split_and_stratification():
    data = read_raw("digits", log=quiet)
    assert data.x_train.shape == (1347, 1, 8, 8) and data.x_test.shape == (450, 1, 8, 8)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.pixel_max == 16 and data.x_train.max() == 16 and data.x_train.min() == 0
    assert data.image_shape == (1, 8, 8)
    assert set(np.unique(data.y_test)) == set(range(10))
    # stratified: every class holds 25% +- 1 of its samples in the test split
    counts_all = np.bincount(np.concatenate([data.y_train, data.y_test]), minlength=10)
    counts_test = np.bincount(data.y_test, minlength=10)
    assert np.all(np.abs(counts_test - counts_all * 0.25) <= 1)


def test_digits_split_is_deterministic():
    a, b = read_raw("digits", log=quiet), read_raw("digits", log=quiet)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)


# --------------------------------------------------------------------------- prepare / load


def test_prepare_round_trip_leaves_no_temp_files(tmp_path):
    out = tmp_path / "prepared" / "digits.npz"
    written = prepare_dataset("digits", out, log=quiet)
    assert sorted(p.name for p in out.parent.iterdir()) == ["digits.npz"]
    loaded = load_prepared(out)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(written, field))
        assert getattr(loaded, field).dtype == getattr(written, field).dtype
    assert (loaded.pixel_max, loaded.name, loaded.num_classes) == (16, "digits", 10)
    assert loaded.source == "sklearn.datasets.load_digits"


def test_prepare_keeps_exact_output_name(tmp_path):
    out = tmp_path / "digits.prepared"  # np.savez would append ".npz" to a path
    prepare_dataset("digits", out, log=quiet)
    assert [p.name for p in tmp_path.iterdir()] == ["digits.prepared"]
    assert load_prepared(out).name == "digits"


def test_failed_prepare_leaves_no_output(tmp_path, no_system_dirs):
    out_dir = tmp_path / "out"
    with pytest.raises(DatasetUnavailableError):
        prepare_dataset("mnist", out_dir / "mnist.npz", tmp_path / "raw", download=False, log=quiet)
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def failing_savez(fh, **arrays):
        fh.write(b"PK half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(prepared.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        prepare_dataset("digits", tmp_path / "digits.npz", log=quiet)
    assert list(tmp_path.iterdir()) == []


def test_load_prepared_rejects_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_prepared(tmp_path / "missing.npz")
    text = tmp_path / "notes.npz"
    text.write_text("not a zip archive")
    with pytest.raises(CorruptDatasetError, match="notes.npz"):
        load_prepared(text)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(CorruptDatasetError, match="other.npz.*not a prepared weightzoo dataset"):
        load_prepared(other)


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="apt-get install dataset-fashion-mnist"
)
def test_real_fashion_mnist_from_debian_package(monkeypatch):
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {"fashion-mnist": (DEBIAN_FASHION_MNIST,)})
    data = read_raw("fashion-mnist", data_dir=None, download=False, log=quiet)
    assert data.x_train.shape == (60000, 1, 28, 28) and data.x_test.shape == (10000, 1, 28, 28)
    assert data.x_train.dtype == np.uint8 and data.pixel_max == 255
    assert np.all(np.bincount(data.y_train, minlength=10) == 6000)
    assert np.all(np.bincount(data.y_test, minlength=10) == 1000)
    assert data.source == str(DEBIAN_FASHION_MNIST)


def test_fashion_mnist_from_system_dir_and_data_dir_precedence(tmp_path, monkeypatch):
    system = tmp_path / "system"
    system_arrays = write_idx_dataset(system, seed=1)
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {"fashion-mnist": (system,)})
    data = read_raw("fashion-mnist", None, download=False, verify_checksums=False, log=quiet)
    assert_mnist_matches(data, system_arrays)
    assert data.source == str(system)

    data_dir = tmp_path / "data"
    own_arrays = write_idx_dataset(data_dir / "FashionMNIST" / "raw", seed=2)
    data = read_raw("fashion-mnist", data_dir, download=False, verify_checksums=False, log=quiet)
    assert_mnist_matches(data, own_arrays)
    assert data.source == str(data_dir / "FashionMNIST" / "raw")


def test_system_dir_content_check_rejects_wrong_split_sizes(tmp_path, monkeypatch):
    system = tmp_path / "system"
    write_idx_dataset(system)
    monkeypatch.setattr(sources, "SYSTEM_DATA_DIRS", {"fashion-mnist": (system,)})
    with pytest.raises(CorruptDatasetError, match="60000"):
        read_raw("fashion-mnist", None, download=False, verify_checksums=True, log=quiet)


# --------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_mnist_from_small_idx_files(tmp_path, no_system_dirs, gz, layout):
    directory = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    arrays = write_idx_dataset(directory, gz=gz)
    data = read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)
    assert_mnist_matches(data, arrays)
    assert data.name == "mnist" and data.source == str(directory)


def test_gz_preferred_over_uncompressed(tmp_path, no_system_dirs):
    gz_arrays = write_idx_dataset(tmp_path, gz=True, seed=3)
    write_idx_dataset(tmp_path, gz=False, seed=4)
    data = read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)
    assert_mnist_matches(data, gz_arrays)


def test_mixed_gz_and_uncompressed_files(tmp_path, no_system_dirs):
    arrays = write_idx_dataset(tmp_path, gz=True)
    raw_labels = tmp_path / "t10k-labels-idx1-ubyte"
    gz_labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw_labels.write_bytes(gzip.decompress(gz_labels.read_bytes()))
    gz_labels.unlink()
    data = read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)
    assert_mnist_matches(data, arrays)


# --------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_cifar10_from_small_pickled_batches(tmp_path, layout):
    directory = tmp_path if layout == "flat" else tmp_path / "cifar-10-batches-py"
    written = write_cifar_dataset(directory)
    data = read_raw("cifar10", tmp_path, download=False, verify_checksums=False, log=quiet)
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (6, 3, 32, 32)
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    train_rows = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    np.testing.assert_array_equal(data.x_train.reshape(20, 3072), train_rows)
    np.testing.assert_array_equal(data.y_train, train_labels)
    np.testing.assert_array_equal(data.y_test, written["test_batch"][1])
    # CHW: the first 1024 values of a row are the red plane, row-major 32x32
    np.testing.assert_array_equal(
        data.x_test[2, 0], written["test_batch"][0][2, :1024].reshape(32, 32)
    )
    np.testing.assert_array_equal(data.x_test[2, 2, 31], written["test_batch"][0][2, -32:])
    assert data.pixel_max == 255 and data.source == str(directory)


def test_cifar10_batch_with_bytes_keys(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as fh:
        pickle.dump({b"data": data, b"labels": [1, 2, 3]}, fh)
    x, y = sources.read_cifar_batch(path)
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [1, 2, 3]


# --------------------------------------------------------------------------- corrupt files


def test_truncated_idx_reports_file_and_byte_counts(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    full = images.read_bytes()
    images.write_bytes(full[:-100])
    with pytest.raises(CorruptDatasetError) as info:
        read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)
    message = str(info.value)
    assert str(images) in message and "truncated" in message
    assert str(len(full)) in message and str(len(full) - 100) in message


def test_truncated_gzip_reports_file(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=True)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-20])
    with pytest.raises(CorruptDatasetError, match="train-labels-idx1-ubyte.gz"):
        read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)


def test_wrong_magic_reports_file(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=False)
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    # an images file where labels are expected: magic 0x803 instead of 0x801
    labels.write_bytes(idx_bytes(np.zeros((20, 28, 28), dtype=np.uint8)))
    with pytest.raises(CorruptDatasetError, match=r"t10k-labels-idx1-ubyte.*magic.*0x00000803"):
        read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)


def test_image_label_count_mismatch(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=True)
    write_file(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(49, dtype=np.uint8)))
    with pytest.raises(CorruptDatasetError, match=r"50 images.*49 labels"):
        read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)


def test_labels_out_of_range_and_wrong_image_size(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=True)
    write_file(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.full(20, 10, dtype=np.uint8)))
    with pytest.raises(CorruptDatasetError, match=r"t10k-labels.*0\.\.9"):
        read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)
    write_idx_dataset(tmp_path, gz=True, hw=32)
    with pytest.raises(CorruptDatasetError, match=r"train-images.*\(32, 32\)"):
        read_raw("mnist", tmp_path, download=False, verify_checksums=False, log=quiet)


def test_garbage_cifar_pickle_reports_file(tmp_path):
    write_cifar_dataset(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"\x80\x02garbage that is no pickle")
    with pytest.raises(CorruptDatasetError, match="data_batch_3"):
        read_raw("cifar10", tmp_path, download=False, verify_checksums=False, log=quiet)


def test_cifar_batch_with_wrong_shape_reports_file(tmp_path):
    write_cifar_dataset(tmp_path)
    write_cifar_batch(tmp_path / "test_batch", np.zeros((6, 3000), dtype=np.uint8), [0] * 6)
    with pytest.raises(CorruptDatasetError, match=r"test_batch.*3072"):
        read_raw("cifar10", tmp_path, download=False, verify_checksums=False, log=quiet)


# --------------------------------------------------------------------------- checksums


def test_md5_mismatch_names_file_and_expected_md5(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path / "MNIST" / "raw", gz=True)
    expected = expected_md5("mnist")["train-images-idx3-ubyte.gz"]
    with pytest.raises(CorruptDatasetError) as info:
        read_raw("mnist", tmp_path, download=False, verify_checksums=True, log=quiet)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and expected in message
    assert "data.verify_checksums" in message


def test_cifar_md5_checked_before_unpickling(tmp_path):
    write_cifar_dataset(tmp_path)
    (tmp_path / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(CorruptDatasetError, match=expected_md5("cifar10")["data_batch_1"]):
        read_raw("cifar10", tmp_path, download=False, verify_checksums=True, log=quiet)


def test_matching_md5_and_official_sizes_pass_verification(tmp_path, monkeypatch, no_system_dirs):
    directory = tmp_path / "MNIST" / "raw"
    arrays = write_idx_dataset(directory, gz=True)
    table = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in directory.iterdir()}
    monkeypatch.setattr(sources, "expected_md5", lambda name: table)
    # md5 passes; the official split sizes are still enforced
    with pytest.raises(CorruptDatasetError, match="60000"):
        read_raw("mnist", tmp_path, download=False, verify_checksums=True, log=quiet)
    monkeypatch.setitem(prepared.OFFICIAL_SPLIT_SIZES, "mnist", (50, 20))
    messages = []
    data = read_raw("mnist", tmp_path, download=False, verify_checksums=True, log=messages.append)
    assert_mnist_matches(data, arrays)
    assert any("md5 verified" in m for m in messages)


def test_uncompressed_files_are_content_checked_when_verifying(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=False)
    with pytest.raises(CorruptDatasetError, match=r"50 train / 20 test.*60000"):
        read_raw("mnist", tmp_path, download=False, verify_checksums=True, log=quiet)


# --------------------------------------------------------------------------- unavailable


def test_unavailable_without_download_lists_places(tmp_path, no_system_dirs):
    with pytest.raises(DatasetUnavailableError) as info:
        read_raw("mnist", tmp_path, download=False, log=quiet)
    message = str(info.value)
    assert "'mnist'" in message and "data.download" in message
    assert str(tmp_path) in message and str(tmp_path / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte.gz" in message


def test_unavailable_reports_incomplete_folder(tmp_path, no_system_dirs):
    write_idx_dataset(tmp_path, gz=True)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetUnavailableError, match=r"missing t10k-images-idx3-ubyte"):
        read_raw("mnist", tmp_path, download=False, log=quiet)


def test_unavailable_download_failure_is_reported(tmp_path, monkeypatch, no_system_dirs):
    def no_network(name, data_dir, log):
        raise OSError("simulated: Name or service not known")

    monkeypatch.setattr(sources, "download_raw", no_network)
    with pytest.raises(DatasetUnavailableError, match="simulated: Name or service not known"):
        read_raw("mnist", tmp_path, download=True, log=quiet)


def test_download_needs_data_dir(no_system_dirs):
    with pytest.raises(DatasetUnavailableError, match="data.data_dir"):
        read_raw("cifar10", None, download=True, log=quiet)


def test_fashion_mnist_unavailable_mentions_debian_package(tmp_path, no_system_dirs):
    with pytest.raises(DatasetUnavailableError, match="apt-get install dataset-fashion-mnist"):
        read_raw("fashion-mnist", tmp_path, download=False, log=quiet)


# --------------------------------------------------------------------------- download (offline)


def test_download_tries_every_mirror_with_timeout(tmp_path, monkeypatch, no_system_dirs):
    import torchvision.datasets as tvd
    from torchvision.datasets import utils as tv_utils

    calls = []

    def failing_download_url(url, root, filename=None, md5=None):
        calls.append((url, socket.getdefaulttimeout()))
        Path(root).mkdir(parents=True, exist_ok=True)
        Path(root, filename).write_bytes(b"partial")  # a half-written download
        raise urllib.error.URLError("simulated DNS failure")

    monkeypatch.setattr(tv_utils, "download_url", failing_download_url)
    with pytest.raises(DatasetUnavailableError) as info:
        read_raw("mnist", tmp_path, download=True, log=quiet)
    first_file = tvd.MNIST.resources[0][0]
    assert [url for url, _ in calls] == [m + first_file for m in tvd.MNIST.mirrors]
    assert all(timeout == sources.DOWNLOAD_TIMEOUT_S for _, timeout in calls)
    assert socket.getdefaulttimeout() is None  # restored
    assert "simulated DNS failure" in str(info.value)
    assert not (tmp_path / "MNIST" / "raw" / first_file).exists()  # partial file removed


def test_downloaded_files_are_read_from_torchvision_layout(tmp_path, monkeypatch, no_system_dirs):
    from torchvision.datasets import utils as tv_utils

    source = tmp_path / "server"
    arrays = write_idx_dataset(source, gz=True)

    def fake_download_url(url, root, filename=None, md5=None):
        Path(root).mkdir(parents=True, exist_ok=True)
        Path(root, filename).write_bytes((source / filename).read_bytes())

    monkeypatch.setattr(tv_utils, "download_url", fake_download_url)
    data_dir = tmp_path / "data"
    data = read_raw("mnist", data_dir, download=True, verify_checksums=False, log=quiet)
    assert_mnist_matches(data, arrays)
    assert data.source == f"{data_dir / 'MNIST' / 'raw'} (downloaded)"
