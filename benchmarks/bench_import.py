"""How fast `weightzoo import` reads a checkpoint folder, and its peak memory.

Writes a checkpoint folder of ``--trials`` state dicts (``torch.save``) of the Small CNN
Zoo's network in torch layouts (three 3x3 convs of 16 channels and a dense layer: 4970
parameters a trial, float32) with random weights and a ``trials.csv``, then imports it in
a child process (``weightzoo.zoo.importers.import_zoo``, default chunk) and prints the
trials per second and the child's peak resident memory (``ru_maxrss``): the writer streams
the trials, so the peak should not grow with ``--trials`` (target: under 1 GB however large
the zoo). ``--quick`` is a smoke run of 200 trials.

Run ``python benchmarks/bench_import.py --help``; ``benchmarks/README.md`` gives the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def write_folder(root: Path, trials: int) -> None:
    import torch

    generator = torch.Generator().manual_seed(0)
    root.mkdir(parents=True, exist_ok=True)
    lines = ["file,test_acc,lr"]
    for k in range(trials):
        state = {n: torch.randn(s, generator=generator) for n, s in SHAPES.items()}
        torch.save(state, root / f"t{k:06d}.pt")
        lines.append(f"t{k:06d}.pt,{(k % 97) / 100},{10.0 ** -(1 + k % 3)}")
    (root / "trials.csv").write_text("\n".join(lines) + "\n")


def import_child(folder: Path, out: Path, chunk: int) -> dict:
    """Run the import in a child process; its time and peak RSS."""
    code = (
        "import json, sys, time; from weightzoo.zoo.importers import import_zoo; "
        "t = time.perf_counter(); "
        "d = import_zoo('checkpoints', sys.argv[1], sys.argv[2], chunk_trials=int(sys.argv[3])); "
        "print(json.dumps({'trials': d.trials, 'seconds': time.perf_counter() - t}))"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(out), str(chunk)],
        capture_output=True,
        text=True,
        check=True,
    )
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = max(peak_kb, before) / 1024  # Linux: kilobytes
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000, help="trials (default 10000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of 200 trials")
    parser.add_argument("--chunk-trials", type=int, default=256, help="the writer's chunk")
    parser.add_argument("--keep", type=Path, help="write the folder and zoo here (kept)")
    args = parser.parse_args(argv)
    trials = 200 if args.quick else args.trials
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        folder, out = root / "folder", root / "zoo.h5"
        start = time.perf_counter()
        write_folder(folder, trials)
        written = time.perf_counter() - start
        result = import_child(folder, out, args.chunk_trials)
        size = out.stat().st_size
    params = sum(math.prod(shape) for shape in SHAPES.values())
    rate = result["trials"] / result["seconds"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"folder: {trials} trials x {params} parameters (float32), written in {written:.1f} s")
    print("| trials | chunk | import s | trials/s | peak RSS MiB | zoo MiB |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {result['trials']} | {args.chunk_trials} | {result['seconds']:.1f} | {rate:.0f} | "
        f"{result['peak_rss_mb']:.0f} | {size / 2**20:.1f} |"
    )
    verdict = "meets" if result["peak_rss_mb"] < PEAK_TARGET_MB else "MISSES"
    print(f"peak RSS target (< {PEAK_TARGET_MB} MiB whatever the zoo size): {verdict}")


if __name__ == "__main__":
    main()
