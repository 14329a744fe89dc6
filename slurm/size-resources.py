#!/usr/bin/env python3
"""Size the memory and wall time of training jobs from the benchmark files they wrote.

Every training job writes results/benchmarks/train/<experiment>/<arch>/<chunk>.tsv
(Snakemake's `benchmark:`: wall seconds `s`, peak resident memory `max_rss` in MB, ...).
After a pilot run of a few chunks (same `trials_per_job` and `epochs` as the real run),

    python slurm/size-resources.py [BENCHMARK_DIR] [--mem-factor 1.5] [--time-factor 2]

prints the largest job per experiment and an `execution:` block (mem_mb, runtime) to put
into the config: the rule `train` requests exactly these (sbatch --mem / -t). Standard
library only, so any python3 on a login node runs it.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path


def read_benchmarks(root: Path) -> list[dict]:
    rows = []
    for tsv in sorted(root.rglob("*.tsv")):
        with open(tsv, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                try:
                    s, rss = float(row["s"]), float(row["max_rss"])
                except (KeyError, ValueError):
                    continue  # "NA" when the job was too short to measure memory
                rel = tsv.relative_to(root)
                rows.append(
                    {
                        "experiment": rel.parts[0] if len(rel.parts) > 1 else "-",
                        "file": str(tsv),
                        "s": s,
                        "max_rss": rss,
                    }
                )
    return rows


def suggest(
    rows: list[dict], mem_factor: float, time_factor: float, min_mem: int, min_runtime: int
) -> tuple[int, int]:
    """mem_mb: factor x largest peak RSS, rounded up to 100 MB; runtime: factor x longest
    job in minutes, rounded up, at least min_runtime."""
    rss = max(r["max_rss"] for r in rows)
    secs = max(r["s"] for r in rows)
    mem_mb = max(min_mem, int(math.ceil(rss * mem_factor / 100.0)) * 100)
    runtime = max(min_runtime, int(math.ceil(secs * time_factor / 60.0)))
    return mem_mb, runtime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "benchmarks",
        nargs="?",
        default="results/benchmarks/train",
        type=Path,
        help="folder of the training jobs' benchmark files (default: results/benchmarks/train)",
    )
    p.add_argument(
        "--mem-factor",
        type=float,
        default=1.5,
        help="headroom on the largest peak memory (default 1.5)",
    )
    p.add_argument(
        "--time-factor",
        type=float,
        default=2.0,
        help="headroom on the longest wall time (default 2)",
    )
    p.add_argument("--min-mem", type=int, default=1000, help="lower bound of mem_mb")
    p.add_argument("--min-runtime", type=int, default=5, help="lower bound of runtime (min)")
    args = p.parse_args(argv)

    rows = read_benchmarks(args.benchmarks)
    if not rows:
        print(
            f"no benchmark files under {args.benchmarks}: run some training jobs first",
            file=sys.stderr,
        )
        return 1
    print(f"# {len(rows)} training job(s) benchmarked under {args.benchmarks}")
    print(f"# {'experiment':<24} {'jobs':>5} {'max_rss_MB':>11} {'max_s':>9}")
    for exp in sorted({r["experiment"] for r in rows}):
        sub = [r for r in rows if r["experiment"] == exp]
        print(
            f"# {exp:<24} {len(sub):>5} {max(r['max_rss'] for r in sub):>11.1f} "
            f"{max(r['s'] for r in sub):>9.1f}"
        )
    mem_mb, runtime = suggest(
        rows, args.mem_factor, args.time_factor, args.min_mem, args.min_runtime
    )
    print("execution:")
    print(f"  mem_mb: {mem_mb}   # {args.mem_factor} x largest peak RSS")
    print(f"  runtime: {runtime}   # minutes, {args.time_factor} x longest job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
