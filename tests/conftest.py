"""Shared fixtures: small in-memory datasets that need no download."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def digits_arrays():
    """scikit-learn's digits as uint8 images [N, 1, 8, 8] (0..16) with a fixed split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.uint8)[:, None]  # [N, 1, 8, 8]
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, d.target, test_size=0.25, random_state=0, stratify=d.target
    )
    return x_tr, y_tr, x_te, y_te


@pytest.fixture
def digits_tensors(digits_arrays):
    """Factory: digits as TensorData in a given dtype, optionally cut to n_train samples."""
    from weightzoo.train.trainer import TensorData

    def make(dtype=torch.float32, n_train=None):
        x_tr, y_tr, x_te, y_te = digits_arrays
        if n_train is not None:
            x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
        return TensorData.from_arrays(x_tr, y_tr, x_te, y_te, 16, dtype=dtype)

    return make
