"""Batched predictor fitting vs the same fits one trial at a time (CPU).

``weightzoo.analysis.reconstruct.fit.fit_predictors`` fits one predictor network per trial
of a chunk, all trials' predictors stacked (one ``baddbmm`` per layer and one Adam step
for all). The loop fits the same trials one at a time with the same function (a chunk of
one), so both compute the same fits. The network: a DNN 784-100-100-10 (the paper's
MNIST width 100; 89,400 represented weights), random weights, ratio ``--ratio``,
``--steps`` Adam steps on ``--rows`` coordinates per trial and step. The target of the
feature request: the batched fit of 100 trials at least 5x the loop.

Run ``python benchmarks/bench_reconstruct.py --help``; ``--quick`` is a smoke run
(2 trials, 2 steps) that only checks the script works.
"""

from __future__ import annotations

import argparse
import time

import torch

from weightzoo.analysis.reconstruct import fit
from weightzoo.analysis.reconstruct.settings import ReconstructSettings
from weightzoo.train.models import get_family

ARCH = {"widths": [100, 100]}
INPUT = (1, 28, 28)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rows", type=int, default=4096, help="coordinates per trial and step")
    p.add_argument("--ratio", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (median reported)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 trials, 2 steps, 1 round")
    args = p.parse_args(argv)
    if args.quick:
        args.trials, args.steps, args.repeats = 2, 2, 1
    return args


def weights(n: int) -> dict[str, torch.Tensor]:
    family = get_family("dnn")
    g = torch.Generator().manual_seed(0)
    shapes = family.param_shapes(ARCH, INPUT, 10)
    return {k: torch.randn(n, *s, generator=g) * 0.1 for k, s in shapes.items()}


def batched(params, settings, seeds) -> float:
    family = get_family("dnn")
    t0 = time.perf_counter()
    targets = fit.prepare("dnn", family, ARCH, params, settings)
    fit.fit_predictors(targets, settings.ratios[0], settings, seeds)
    return time.perf_counter() - t0


def loop(params, settings, seeds) -> float:
    return sum(
        batched({k: v[i : i + 1] for k, v in params.items()}, settings, seeds[i : i + 1])
        for i in range(len(seeds))
    )


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = ReconstructSettings(ratios=(args.ratio,), claim_ratio=args.ratio,
                                   steps=args.steps, batch_rows=args.rows)  # fmt: skip
    params = weights(args.trials)
    seeds = list(range(args.trials))
    rounds = []
    for _ in range(args.repeats):
        rounds.append((batched(params, settings, seeds), loop(params, settings, seeds)))
    b = sorted(r[0] for r in rounds)[len(rounds) // 2]
    lp = sorted(r[1] for r in rounds)[len(rounds) // 2]
    print(f"{args.trials} trials, {args.steps} steps, {args.rows} rows, ratio {args.ratio}, "
          f"{args.threads} thread(s), median of {args.repeats}")  # fmt: skip
    print("| method | seconds | trial-steps/s |")
    print("|---|---|---|")
    for name, sec in (("batched", b), ("loop", lp)):
        print(f"| {name} | {sec:.3f} | {args.trials * args.steps / sec:.1f} |")
    print(f"batched / loop speed: {lp / b:.2f}x (target at 100 trials: >= 5x)")


if __name__ == "__main__":
    main()
