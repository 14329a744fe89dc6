"""The import stage (rule import_zoo): an experiment's ``source:`` read into its zoo file."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from ..zoo.importers import import_zoo
from ..zoo.importers.run import DEFAULT_DATASET

log = logging.getLogger(__name__)


def import_experiment(source: Mapping, repo_root, out_path, experiment: str) -> None:
    """Import ``source`` (the config's block; paths relative to ``repo_root``, like every
    path of a config) into ``out_path``, the zoo of ``experiment``."""
    resolve = lambda p: None if p is None else (Path(repo_root) / p).resolve()  # noqa: E731
    done = import_zoo(
        source["format"],
        resolve(source["path"]),
        out_path,
        csv=resolve(source.get("csv")),
        dataset=source.get("dataset", DEFAULT_DATASET),
        experiment=experiment,
        accuracy_unit=source.get("accuracy_unit"),
    )
    log.info(
        "%s: %d trials in %d architectures, %.0f trials/s, accuracies in %ss, sha256 %s",
        experiment,
        done.trials,
        len(done.archs),
        done.rate,
        done.provenance["accuracy_unit"],
        done.provenance["content_sha256"],
    )
