"""The figure-data stage (rule figure_data): what a figure draws, computed once per
experiment and kind (:mod:`weightzoo.analysis.figuredata`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


def figure_data(kind: str, zoo_path, groups_path, out_path, options: Mapping) -> None:
    """Compute the ``kind`` data of one experiment (its zoo and groups file) with
    ``options`` (keywords of ``weightzoo.analysis.figuredata.<kind>.<kind>_data``)."""
    import importlib

    module = importlib.import_module(f"weightzoo.analysis.figuredata.{kind}")
    log.info("computing %s figure data of %s with %s", kind, zoo_path, dict(options))
    getattr(module, f"{kind}_data")(str(zoo_path), str(groups_path), str(out_path), **options)
    log.info("wrote %s", out_path)
