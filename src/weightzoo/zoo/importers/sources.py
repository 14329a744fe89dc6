"""The source formats and the files each one reads (standard library only).

Snakemake lists an imported experiment's source files as the inputs of its rule
``import_zoo`` (so a changed file re-imports it) while it plans the workflow: this module
imports nothing heavier than :mod:`pathlib`.
"""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINTS = "checkpoints"
SMALL_CNN_ZOO = "small-cnn-zoo"
MODEL_ZOOS = "model-zoos"
FORMATS = (CHECKPOINTS, SMALL_CNN_ZOO, MODEL_ZOOS)

# the CSV of a checkpoint folder, when --csv names none
DEFAULT_CSV = "trials.csv"
STATE_DICT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
# Small CNN Zoo: the README names the matrix and metrics.csv.gz, its notebook reads
# all_weights.npy and all_metrics.csv; either spelling is found
SMALL_CNN_WEIGHTS = ("weights.npy", "all_weights.npy")
SMALL_CNN_METRICS = ("metrics.csv.gz", "metrics.csv", "all_metrics.csv")
SMALL_CNN_LAYOUT = "layout.csv"
# Model Zoos: <model>/checkpoint_<epoch>/checkpoints (epoch also zero-padded to 6 digits)
MODEL_ZOOS_CHECKPOINT = re.compile(r"checkpoint_0*([0-9]+)")
MODEL_ZOOS_FILES = ("result.json", "params.json")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown import format {fmt!r}; formats: {', '.join(FORMATS)}")
    return fmt


def first_existing(folder: Path, names) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def model_zoo_checkpoints(model_dir: Path) -> dict[int, Path]:
    """``{epoch: path}`` of one Model Zoos model folder's checkpoint files."""
    found = {}
    for sub in model_dir.iterdir() if model_dir.is_dir() else ():
        m = MODEL_ZOOS_CHECKPOINT.fullmatch(sub.name)
        if m and (sub / "checkpoints").is_file():
            found[int(m.group(1))] = sub / "checkpoints"
    return dict(sorted(found.items()))


def model_zoo_models(root: Path) -> list[Path]:
    """The model folders of a Model Zoos root, by name (folders without checkpoints are
    not models: Ray Tune's own files sit beside them)."""
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and model_zoo_checkpoints(d))


def source_files(fmt: str, path, csv=None) -> list[str]:
    """Every file the import of ``path`` reads (for Snakemake's inputs); a path that does
    not exist yet gives itself (Snakemake then says that it is missing)."""
    check_format(fmt)
    root = Path(path)
    if fmt == CHECKPOINTS:
        table = Path(csv) if csv else root / DEFAULT_CSV
        files = [table]
        if root.is_dir():
            files += sorted(
                p for p in root.rglob("*") if p.is_file() and p.suffix in STATE_DICT_SUFFIXES
            )
        return [str(p) for p in files]
    if fmt == SMALL_CNN_ZOO:
        names = (*SMALL_CNN_WEIGHTS, *SMALL_CNN_METRICS, SMALL_CNN_LAYOUT)
        files = [root / n for n in names if (root / n).is_file()]
        return [str(p) for p in files] or [str(root)]
    files = []
    for model in model_zoo_models(root):
        files += list(model_zoo_checkpoints(model).values())
        files += [model / n for n in MODEL_ZOOS_FILES if (model / n).is_file()]
    return [str(p) for p in files] or [str(root)]
