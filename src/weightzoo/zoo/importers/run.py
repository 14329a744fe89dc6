"""``import_zoo``: a source read by its format's reader, streamed into a zoo file."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import h5py

from ...io import atomic_output
from ..hdf5 import _write_root_attrs, package_versions
from .errors import ZooImportError
from .provenance import file_sha256, provenance, provenance_json, relative
from .records import SourcePlan
from .sources import CHECKPOINTS, SMALL_CNN_ZOO, check_format
from .writer import MODEL, ZooWriter

log = logging.getLogger(__name__)

DEFAULT_CHUNK_TRIALS = 256
DEFAULT_DATASET = "unknown"


@dataclass
class ImportSummary:
    out: Path
    trials: int
    archs: list[str]
    seconds: float
    max_buffered: int
    provenance: dict

    @property
    def rate(self) -> float:
        return self.trials / self.seconds if self.seconds > 0 else float("inf")


def read_plan(fmt: str, path: Path, csv: Path | None, accuracy_unit: str | None) -> SourcePlan:
    if fmt == CHECKPOINTS:
        from .checkpoints import plan
    elif fmt == SMALL_CNN_ZOO:
        from .small_cnn_zoo import plan
    else:
        from .model_zoos import plan
    if csv is not None and fmt != CHECKPOINTS:
        raise ZooImportError(f"--csv is for the {CHECKPOINTS} format; {fmt} names its own files")
    return plan(path, csv, accuracy_unit) if fmt == CHECKPOINTS else plan(path, accuracy_unit)


def import_zoo(
    fmt: str,
    path,
    out,
    *,
    csv=None,
    dataset: str = DEFAULT_DATASET,
    experiment: str | None = None,
    accuracy_unit: str | None = None,
    chunk_trials: int = DEFAULT_CHUNK_TRIALS,
) -> ImportSummary:
    """Read the zoo at ``path`` (format ``fmt``, :data:`~.sources.FORMATS`) and write the
    zoo file ``out`` (atomic: nothing is left under ``out`` when it fails). ``csv``: the
    trials table of a checkpoint folder (default ``trials.csv`` in it); ``accuracy_unit``:
    fraction or percent (None: inferred, see :func:`~.table.resolve_unit`);
    ``chunk_trials``: trials whose weights are held before they are written."""
    try:
        check_format(fmt)
    except ValueError as e:
        raise ZooImportError(str(e)) from None
    path, out = Path(path), Path(out)
    experiment = experiment or out.stem
    start = time.perf_counter()
    source = read_plan(fmt, path, Path(csv) if csv else None, accuracy_unit)
    options = {"format": fmt, "path": str(path), "accuracy_unit": source.accuracy_unit}
    if csv:
        options["csv"] = str(csv)
    with atomic_output(out) as tmp, h5py.File(tmp, "w") as f:
        meta = {"experiment": experiment, "model": MODEL, "dataset": dataset}
        _write_root_attrs(
            f, {**meta, "versions": package_versions(), "config": {"source": options}}
        )
        writer = ZooWriter(f, source.epochs, source.weight_sets, source.hparam_names, chunk_trials)
        n = 0
        for rec in source.trials():
            writer.add(rec)
            n += 1
        archs = writer.finish()
        for file in source.metadata_files:
            source.content.add(relative(file, path), file_sha256(Path(file)))
        prov = provenance(fmt, path, source.content)
        prov["accuracy_unit"] = source.accuracy_unit
        f.attrs["provenance"] = provenance_json(prov)
    seconds = time.perf_counter() - start
    summary = ImportSummary(out, n, archs, seconds, writer.max_buffered, prov)
    log.info(
        "imported %d trials (%s) from %s %s into %s in %.1f s (%.0f trials/s)",
        n,
        ", ".join(archs),
        fmt,
        path,
        out,
        seconds,
        summary.rate,
    )
    return summary
