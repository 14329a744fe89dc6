"""How fast `weightzoo import` reads a zoo, and its peak memory.

Writes a zoo of the Small CNN Zoo's network (three 3x3 convs of 16 channels and a dense
layer: 4970 parameters a trial, float32, random weights) in one of two layouts: a
checkpoint folder (``--layout checkpoints``, default: one ``torch.save`` state dict a
trial in torch layouts, written once for the largest of ``--trials``, and a trials CSV of
its first N rows for each size) or the Small CNN Zoo's own (``--layout small-cnn-zoo``:
``weights.npy`` with each model's initial and final checkpoint, ``metrics.csv.gz``, one
folder a size). Each size is imported in a child process of its own
(``weightzoo.zoo.importers.import_zoo``, chunks of ``--chunk-trials``), which reports its
rate (trials per second), its peak resident memory (``VmHWM`` of ``/proc/self/status``:
the high-water mark of the child's own memory since it started; ``ru_maxrss`` would also
count the parent's peak, which a child started with ``vfork`` inherits, and the parent
that wrote a large ``weights.npy`` through a memory map had its pages resident) and the
memory it had reached once its modules were imported (torch, h5py, pandas, the
importer), before reading any trial. The writer streams the trials, so the peak should
not grow with the zoo (target: under 1 GB whatever its size): the table gives the growth
per trial between the smallest and the largest size. ``--quick`` is a smoke run of 100
and 200 trials.

Run ``python benchmarks/bench_import.py --help``; ``docs/import.md`` gives the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPES = {
    "conv1.weight": (16, 1, 3, 3),
    "conv1.bias": (16,),
    "conv2.weight": (16, 16, 3, 3),
    "conv2.bias": (16,),
    "conv3.weight": (16, 16, 3, 3),
    "conv3.bias": (16,),
    "dense.weight": (10, 16),
    "dense.bias": (10,),
}
PEAK_TARGET_MB = 1024


LAYOUTS = ("checkpoints", "small-cnn-zoo")
DEFAULT_SIZES = (2_000, 10_000)
QUICK_SIZES = (100, 200)
MIB = 2**20
COLUMNS = (
    "trials",
    "chunk",
    "import s",
    "trials/s",
    "RSS after imports MiB",
    "peak RSS MiB",
    "zoo MiB",
)


def write_folder(root: Path, trials: int) -> None:
    """``trials`` state dicts t<k>.pt and ``trials.csv`` naming them, in trial order."""
    import torch

    generator = torch.Generator().manual_seed(0)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["file,test_acc,lr"]
    for k in range(trials):
        state = {n: torch.randn(s, generator=generator) for n, s in SHAPES.items()}
        torch.save(state, root / f"t{k:06d}.pt")
        lines.append(f"t{k:06d}.pt,{(k % 97) / 100},{10.0 ** -(1 + k % 3)}")
    (root / "trials.csv").write_text("\n".join(lines) + "\n")


def write_table_of_first(root: Path, trials: int) -> Path:
    """A trials CSV of the folder's first ``trials`` rows (a smaller zoo, same files)."""
    lines = (root / "trials.csv").read_text().splitlines()
    csv = root / f"trials_{trials}.csv"
    csv.write_text("\n".join(lines[: trials + 1]) + "\n")
    return csv


def write_small_cnn_zoo(root: Path, trials: int) -> None:
    """The Small CNN Zoo layout: ``weights.npy`` [2 * trials, 4970] (each model's initial
    and final checkpoint, written a block at a time) and ``metrics.csv.gz`` (modeldir, step,
    accuracies, two epochs, a varied learning rate); no layout.csv: the importer's
    built-in layout of the README's network."""
    import pandas as pd
    from numpy.lib.format import open_memmap

    root.mkdir(parents=True, exist_ok=True)
    params = sum(math.prod(shape) for shape in SHAPES.values())
    matrix = open_memmap(root / "weights.npy", "w+", np.float32, (2 * trials, params))
    rng = np.random.default_rng(0)
    for start in range(0, 2 * trials, 1024):
        stop = min(start + 1024, 2 * trials)
        matrix[start:stop] = rng.standard_normal((stop - start, params), dtype=np.float32)
    matrix.flush()
    del matrix
    model = np.repeat(np.arange(trials), 2)
    table = pd.DataFrame(
        {
            "modeldir": [f"/zoo/mnist/{m}" for m in model],
            "step": np.tile([0, 200], trials),
            "test_accuracy": np.where(np.arange(2 * trials) % 2, (model % 97) / 100, 0.1),
            "config.epochs": 2,
            "config.learning_rate": 10.0 ** -(1 + model % 3),
        }
    )
    table.to_csv(root / "metrics.csv.gz", index=False, compression="gzip")


# The child: its modules, then the import; the high-water mark of its own resident memory
# (KiB) at both points: VmHWM (Linux), else ru_maxrss.
CHILD = """
import json, resource, sys, time
import h5py, pandas, torch
from weightzoo.zoo.importers import import_zoo
def high_water_kib():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
after_imports = high_water_kib()
t = time.perf_counter()
done = import_zoo(sys.argv[1], sys.argv[2], sys.argv[3], csv=sys.argv[4] or None,
                  chunk_trials=int(sys.argv[5]))
seconds = time.perf_counter() - t
peak = high_water_kib()
print(json.dumps({"trials": done.trials, "seconds": seconds,
                  "imports_kib": after_imports, "peak_kib": peak}))
"""


def import_child(layout: str, folder: Path, csv: Path | None, out: Path, chunk: int) -> dict:
    """Import ``folder`` (with the table ``csv``) in a child process: its time and memory."""
    argv = [layout, str(folder), str(out), str(csv or ""), str(chunk)]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, check=True
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["zoo_mib"] = out.stat().st_size / MIB
    return result


def measure(root: Path, layout: str, sizes: list[int], chunk: int) -> tuple[list[dict], float]:
    """The zoos of each size, each imported in its own child; the seconds writing them."""
    start = time.perf_counter()
    if layout == "checkpoints":
        folder = root / "folder"
        write_folder(folder, max(sizes))
        sources = {n: (folder, write_table_of_first(folder, n)) for n in sorted(sizes)}
    else:
        for n in sizes:
            write_small_cnn_zoo(root / f"small_cnn_zoo_{n}", n)
        sources = {n: (root / f"small_cnn_zoo_{n}", None) for n in sorted(sizes)}
    written = time.perf_counter() - start
    results = []
    for trials, (folder, csv) in sources.items():
        results.append(import_child(layout, folder, csv, root / f"zoo_{trials}.h5", chunk))
    return results, written


def growth_per_trial(results: list[dict]) -> float | None:
    """Bytes of peak RSS per trial between the smallest and the largest zoo."""
    small, large = results[0], results[-1]
    if large["trials"] == small["trials"]:
        return None
    return (large["peak_kib"] - small["peak_kib"]) * 1024 / (large["trials"] - small["trials"])


def report(results: list[dict], layout: str, chunk: int, written: float) -> None:
    params = sum(math.prod(shape) for shape in SHAPES.values())
    largest = results[-1]["trials"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{layout}: {largest} trials x {params} parameters (float32), written in {written:.1f} s")
    print(f"| {' | '.join(COLUMNS)} |")
    print("|" + "---|" * len(COLUMNS))
    for r in results:
        print(
            f"| {r['trials']} | {chunk} | {r['seconds']:.1f} | {r['trials'] / r['seconds']:.0f} "
            f"| {r['imports_kib'] / 1024:.0f} | {r['peak_kib'] / 1024:.0f} | {r['zoo_mib']:.1f} |"
        )
    growth = growth_per_trial(results)
    if growth is not None:
        print(
            f"peak RSS growth from {results[0]['trials']} to {largest} trials: {growth:.0f} B/trial"
        )
    peak = max(r["peak_kib"] for r in results) / 1024
    verdict = "meets" if peak < PEAK_TARGET_MB else "MISSES"
    print(f"peak RSS target (< {PEAK_TARGET_MB} MiB whatever the zoo size): {verdict}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials",
        type=int,
        nargs="+",
        default=list(DEFAULT_SIZES),
        metavar="N",
        help="zoo sizes to import (default 2000 10000)",
    )
    parser.add_argument(
        "--layout", choices=LAYOUTS, default="checkpoints", help="the source's layout"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of 100 and 200 trials")
    parser.add_argument("--chunk-trials", type=int, default=256, help="the writer's chunk")
    parser.add_argument("--keep", type=Path, help="write the folder and zoos here (kept)")
    args = parser.parse_args(argv)
    sizes = list(QUICK_SIZES) if args.quick else args.trials
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        results, written = measure(root, args.layout, sizes, args.chunk_trials)
    report(results, args.layout, args.chunk_trials, written)


if __name__ == "__main__":
    main()
