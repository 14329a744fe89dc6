"""The timing harness the benchmark scripts share: methods timed in interleaved rounds
(round 0 a warm-up), medians and spreads over the rounds, ratios within a round and their
verdict against a target, the Markdown table and CSV, and the options every script takes."""

from __future__ import annotations

import argparse
import csv
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from weightzoo.train.device import apply_device_settings, resolve_device

MATMUL_N = 1024


# --------------------------------------------------------------------------- methods
@dataclass
class Method:
    """A timed unit of work: one call of ``run`` does ``steps`` steps of ``trials`` trials
    (for the matmul, ``steps`` counts matmuls)."""

    name: str
    trials: int
    steps: int
    flop_per_call: float
    run: Callable[[], object]
    is_matmul: bool = False
    seconds: list[float] = field(default_factory=list)  # one per reported round
    faults: list[int] = field(default_factory=list)  # minor page faults per reported round

    @property
    def label(self) -> str:
        return self.name if self.is_matmul else f"{self.name} ×{self.trials}"


def matmul(device: torch.device, target_s: float) -> Method:
    """A plain ``[1024, 1024] @ [1024, 1024]`` float32 matmul, repeated ~``target_s`` seconds."""
    a = torch.randn(MATMUL_N, MATMUL_N, device=device)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device)
    out = torch.empty(MATMUL_N, MATMUL_N, device=device)
    for _ in range(3):  # warm up, then calibrate the repetitions
        torch.mm(a, b, out=out)
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(5):
        torch.mm(a, b, out=out)
    synchronize(device)
    reps = max(3, math.ceil(target_s / ((time.perf_counter() - t0) / 5)))

    def run():
        for _ in range(reps):
            torch.mm(a, b, out=out)

    flop = reps * 2.0 * MATMUL_N**3
    return Method(f"matmul {MATMUL_N}³ fp32", 1, reps, flop, run, is_matmul=True)


# --------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_once(method: Method, device: torch.device) -> tuple[float, int]:
    """Wall seconds and minor page faults of one ``method.run()``."""
    synchronize(device)
    faults0, t0 = minor_faults(), time.perf_counter()
    method.run()
    synchronize(device)
    return time.perf_counter() - t0, minor_faults() - faults0


def run_rounds(methods: list[Method], repeats: int, device: torch.device) -> None:
    """Round 0 warms every method up; rounds 1..repeats are recorded, methods interleaved."""
    for round_no in range(repeats + 1):
        for m in methods:
            print(f"round {round_no}/{repeats}: {m.label}", file=sys.stderr, flush=True)
            seconds, faults = time_once(m, device)
            if round_no > 0:
                m.seconds.append(seconds)
                m.faults.append(faults)


# --------------------------------------------------------------------------- report
@dataclass
class Row:
    """One line of the table (and the CSV); medians over the timed rounds."""

    method: str
    trials: int | None  # None for the matmul
    steps_per_call: int  # matmul: repetitions per call
    trial_steps_per_s: float | None
    x_a: float | None  # trial-steps/s over (a)'s, same round
    gflops: float
    pct_matmul: float | None  # GFLOP/s over the matmul's, same round
    faults_per_step: float | None  # minor page faults per step (whole process)


def summarize(methods: list[Method], base: Method | None = None) -> list[Row]:
    """Medians over rounds; ratios are formed within each round, then their median taken.

    ``base``: the method the ``x_a`` column divides by (default: the one named ``(a) …``)."""
    if base is None:
        base = next(m for m in methods if m.name.startswith("(a)"))
    mm = next((m for m in methods if m.is_matmul), None)
    base_rates = [base.trials * base.steps / s for s in base.seconds]
    mm_gflops = [mm.flop_per_call / s / 1e9 for s in mm.seconds] if mm else None
    rows = []
    for m in methods:
        gflops = [m.flop_per_call / s / 1e9 for s in m.seconds]
        pct = (
            statistics.median([100 * g / r for g, r in zip(gflops, mm_gflops, strict=True)])
            if mm_gflops
            else None
        )
        if m.is_matmul:
            rows.append(
                Row(m.label, None, m.steps, None, None, statistics.median(gflops), pct, None)
            )
            continue
        rates = [m.trials * m.steps / s for s in m.seconds]
        x_a = [r / b for r, b in zip(rates, base_rates, strict=True)]
        faults = statistics.median([f / m.steps for f in m.faults])
        rows.append(
            Row(
                m.name,
                m.trials,
                m.steps,
                statistics.median(rates),
                statistics.median(x_a),
                statistics.median(gflops),
                pct,
                faults,
            )
        )
    return rows


def fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown_table(rows: list[Row], base: str = "(a)") -> str:
    """The table; ``base`` names the method of the ratio column (``x_a`` of the rows)."""
    lines = [
        f"| method | trials | trial-steps/s (median) | × {base} | GFLOP/s | % of matmul |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        cells = [
            r.method,
            fmt(r.trials, "d"),
            fmt(r.trial_steps_per_s, ",.0f"),
            fmt(r.x_a, ".1f"),
            fmt(r.gflops, ".1f"),
            fmt(r.pct_matmul, ".0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: list[Row], path: str, ratio_column: str = "x_a") -> None:
    """The rows as CSV, one column per ``Row`` field; ``x_a`` is written as ``ratio_column``."""
    fields = list(Row.__dataclass_fields__)
    header = {k: ratio_column if k == "x_a" else k for k in fields}
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header.values()))
        writer.writeheader()
        for r in rows:
            writer.writerow({header[k]: getattr(r, k) for k in fields})


def round_ratios(m: Method, base: Method) -> list[float]:
    """``m``'s trial-steps/s over ``base``'s, taken within each timed round."""
    return [
        (m.trials * m.steps / a) / (base.trials * base.steps / b)
        for a, b in zip(m.seconds, base.seconds, strict=True)
    ]


def round_ratio(m: Method, base: Method) -> float:
    """Median over rounds of ``m``'s trial-steps/s over ``base``'s, taken within each round."""
    return statistics.median(round_ratios(m, base))


def ratio_verdict(ratios: list[float], target: float) -> str:
    """``1.55× (rounds 1.41–1.62); target ≥ 2×: NOT met (0/5 rounds)``: the verdict is the
    median's, and the spread says how far this machine's round-to-round noise reaches."""
    median = statistics.median(ratios)
    above = sum(r >= target for r in ratios)
    return (
        f"{median:.2f}× (rounds {min(ratios):.2f}–{max(ratios):.2f}); target ≥ {target:g}×: "
        f"{'met' if median >= target else 'NOT met'} ({above}/{len(ratios)} rounds)"
    )


QUICK_DEFAULTS = {"steps": 5, "repeats": 1, "matmul_seconds": 0.05}


# Options shared with bench_models.py. Help texts are formatted with the script's defaults
# ({steps}, ...) and its --quick defaults ({quick_steps}, ...).
OPTIONS: dict[str, dict] = {
    "--steps": {
        "type": int,
        "default": None,
        "help": "steps per timed call of (b) and (c) (default {steps})",
    },
    "--steps-a": {
        "type": int,
        "default": None,
        "help": "steps per timed call of (a) "
        "(default: --steps); rates are per step, so fewer only shortens the run",
    },
    "--trials": {
        "type": int,
        "nargs": "+",
        "default": [1, 10, 100],
        "help": "ensemble sizes for (c), e.g. 1 10 100 1000",
    },
    "--repeats": {
        "type": int,
        "default": None,
        "help": "timed rounds, medians reported (default {repeats})",
    },
    "--device": {
        "choices": ["auto", "cpu", "cuda", "mps"],
        "default": "auto",
        "help": "auto = CUDA, then Apple MPS, then the CPU (float32 everywhere)",
    },
    "--threads": {"type": int, "default": None, "help": "torch.set_num_threads"},
    "--data": {
        "choices": ["auto", "fashion-mnist", "synthetic"],
        "default": "auto",
        "help": "images: Fashion-MNIST if installed (auto), or uint8 noise",
    },
    "--matmul-seconds": {
        "type": float,
        "default": None,
        "help": "length of one timed matmul call ({matmul_seconds:g})",
    },
    "--csv": {"metavar": "PATH", "help": "also write the table as CSV"},
    "--dynamics": {
        "choices": ["off", "on", "both"],
        "default": "off",
        "help": "(c) without (off) or with (on) the per-epoch layer dynamics, or both in the "
        "same rounds with their cost per MNIST epoch (default off)",
    },
    "--matmul-bound": {
        "action": "store_true",
        "help": "also time (e): nothing but the batched matmuls of (c)'s steps at 100 "
        "trials, the bound on any step of this design",
    },
    "--no-recipe": {
        "action": "store_true",
        "help": "leave out (d), the torch.func ensembling recipe",
    },
    "--profile": {
        "action": "store_true",
        "help": "after the timed rounds, profile one call of (c) at the largest --trials "
        "(bench_models.py: and of each model's (b)) and print where its CPU time goes",
    },
    "--malloc-tuned": {
        "action": "store_true",
        "help": "re-run with THP_MEM_ALLOC_ENABLE=1 and large glibc MALLOC_MMAP/TRIM "
        "thresholds, so big per-step CPU tensors reuse memory instead of re-mapping it",
    },
    "--quick": {
        "action": "store_true",
        "help": "smoke test: defaults become {quick_steps} steps, {quick_repeats} timed round, "
        "{quick_matmul_seconds:g} s matmul (options given explicitly still win); the numbers "
        "are not reliable",
    },
}


def add_options(
    p: argparse.ArgumentParser, names: list[str], full: Mapping, quick: Mapping
) -> None:
    """Add the ``OPTIONS`` ``names`` to ``p``, in that order."""
    keys = {**full, **{f"quick_{k}": v for k, v in quick.items()}}
    for name in names:
        spec = dict(OPTIONS[name])
        if "help" in spec:
            spec["help"] = spec["help"].format(**keys)
        p.add_argument(name, **spec)


def apply_defaults(args: argparse.Namespace, full: Mapping, quick: Mapping) -> None:
    """Options left unset take ``full`` defaults, or ``quick`` ones under ``--quick``."""
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def check_positive(p: argparse.ArgumentParser, args: argparse.Namespace, names: list[str]):
    """Exit with a usage error unless every value of the options ``names`` is ≥ 1."""
    values = []
    for name in names:
        value = getattr(args, name.lstrip("-").replace("-", "_"))
        values.extend(value if isinstance(value, list) else [value])
    if min(values) < 1:
        p.error(f"{', '.join(names[:-1])} and {names[-1]} must be positive")


def setup_device(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads``, resolve ``--device`` and set what a training job sets there
    (CUDA: deterministic mode, full-precision float32; ``weightzoo.train.device``), so the rows
    time what jobs run. Everything is float32: nothing here needs float64 (none on MPS)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    apply_device_settings(device)
    return device


def print_report(
    rows: list[Row], lines: list[str], args: argparse.Namespace, base: str = "(a)"
) -> None:
    """The table, the ``lines`` below it, and the CSV if ``--csv`` asks for it."""
    print(markdown_table(rows, base))
    print()
    for line in lines:
        print(line)
    if args.quick:
        print("- --quick: smoke test only, the numbers are not representative")
    if args.csv:
        write_csv(rows, args.csv, ratio_column="x_" + base.strip("()"))
