"""Dataset catalog: the names, image shapes, class count, official split sizes and raw file
names of the datasets. Standard library only, so configuration checks can import it cheaply
(md5 sums come from torchvision's own tables: :func:`weightzoo.data.sources.expected_md5`).

Datasets by name (``DATASETS``):

* ``digits``: scikit-learn's bundled 8x8 digits, fixed stratified 1347/450 split, values 0..16.
* ``fashion-mnist``, ``mnist``: IDX files (``.gz`` or uncompressed), 28x28 grey images.
* ``cifar10``: the "python version" pickled batches, 32x32 RGB images in CHW order.
"""

from __future__ import annotations

DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", "mnist", "cifar10")

# Sub-folder of ``data_dir`` that torchvision uses for each dataset (downloads go there).
TORCHVISION_SUBDIRS: dict[str, str] = {
    "mnist": "MNIST/raw",
    "fashion-mnist": "FashionMNIST/raw",
    "cifar10": "cifar-10-batches-py",
}

# Official (train, test) sizes, enforced when verify_checksums is on.
OFFICIAL_SPLIT_SIZES: dict[str, tuple[int, int]] = {
    "digits": (1347, 450),
    "mnist": (60000, 10000),
    "fashion-mnist": (60000, 10000),
    "cifar10": (50000, 10000),
}

IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "digits": (1, 8, 8),
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
}

# IDX file stems; either ``<stem>.gz`` or ``<stem>`` is accepted (the .gz is preferred because
# its md5 is in torchvision's table).
IDX_STEMS: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

CIFAR_TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"

NUM_CLASSES = 10


def check_dataset_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")


def required_files(name: str) -> list[str]:
    """Canonical file names a user has to provide (for error messages)."""
    if name == "cifar10":
        return [*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE]
    return [f"{stem}.gz" for stem in IDX_STEMS.values()]
