"""The data stage (rule prepare_data): a dataset read and written as its prepared ``.npz``."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..config import resolve_path
from ..data.sources import prepare_dataset

log = logging.getLogger(__name__)


def prepare_data(dataset: str, out_path, data_config: Mapping, root=".") -> None:
    """``root``: what a relative ``data_dir`` is relative to (the repository; the job itself
    runs in the config's run directory)."""
    prepare_dataset(
        dataset,
        out_path,
        data_dir=resolve_path(data_config.get("data_dir"), root),
        download=data_config.get("download", True),
        verify_checksums=data_config.get("verify_checksums", True),
        log=log.info,
    )
