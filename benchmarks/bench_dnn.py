"""Throughput of the paper's 784-100-100-10 DNN: one trial at a time vs. the batched trainer.

Methods, all training with batch 100, Adam (lr 1e-3), init N(0, 0.1²), float32:

* (a) ``torchvision-style``: one trial the way a researcher usually writes it. A dataset that
  serves 28x28 uint8 images exactly like ``torchvision.datasets.MNIST`` (its own ``__getitem__``:
  one PIL image per sample, then ``transforms.ToTensor()``), ``DataLoader(batch_size=100,
  shuffle=True)``, ``nn.Sequential`` and ``torch.optim.Adam``.
* (b) ``in-memory tensors``: one trial over pre-scaled float tensors on the device, the loop of
  ``weightzoo.train.reference.train_reference`` (same init and data order as the batched trainer).
* (c) ``batched trainer``: ``EnsembleTrainer.train_epoch`` for T trials at once; the training
  set holds ``steps * 100`` samples, so one epoch is exactly ``steps`` steps.
  ``--dynamics on`` adds, after each epoch, the per-epoch layer dynamics as
  ``EnsembleTrainer.run`` records them (weightzoo.train.dynamics); ``--dynamics both`` times (c)
  without and with them in the same rounds and prints what they cost per MNIST epoch.
* (d) ``torch.func recipe``: PyTorch's documented model-ensembling recipe
  (``stack_module_state`` + ``vmap(functional_call)`` + one ``torch.optim.Adam``), trained
  with the same data order, init policy and steps (``--no-recipe`` leaves it out).
* (e) ``(c)'s matmuls alone`` (``--matmul-bound``): nothing but the batched matmuls of (c)'s
  steps at 100 trials, the bound on any step of this design.
* ``matmul``: a plain 1024³ float32 matmul, the machine's arithmetic rate in the same run.

Methods are interleaved round by round (a, b, c1, c10, c100, matmul, a, b, ...) because the
CPU's speed drifts; round 0 is a warm-up and is not reported. Ratios are taken within a round
and the table shows medians over ``--repeats`` rounds.

Run ``python benchmarks/bench_dnn.py --help``; ``benchmarks/README.md`` explains the targets.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import statistics
import sys
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from weightzoo.bench.harness import (
    QUICK_DEFAULTS,
    Method,
    Row,
    add_options,
    apply_defaults,
    check_positive,
    fmt,
    matmul,
    print_report,
    ratio_verdict,
    round_ratio,
    round_ratios,
    run_rounds,
    setup_device,
    summarize,
)
from weightzoo.bench.machine import GLIBC_MMAP_THRESHOLD_MAX, MALLOC_TUNED_ENV, machine_lines
from weightzoo.bench.profile import profile_lines
from weightzoo.bench.targets import (
    TARGET_CPU_PCT_MATMUL,
    TARGET_CPU_X_A,
    TARGET_CPU_X_RECIPE,
    TARGET_DYNAMICS_PCT,
    TARGET_GPU_X_A,
)
from weightzoo.bench.training import (
    BASE_SEED,
    BATCH,
    DYNAMICS_LABEL,
    IMAGE_SHAPE,
    INIT_STD,
    LR,
    NUM_CLASSES,
    load_images,
    reference_method,
    tensor_data,
    train_settings,
    trainer_method,
)
from weightzoo.train.models import get_family
from weightzoo.train.seeds import trial_seeds
from weightzoo.train.trainer import (
    TensorData,
    TrainSettings,
    batch_slices,
    data_generators,
    epoch_orders,
)

ARCH = {"widths": [100, 100]}
# A (c) run re-faulting more pages than this per step gets the --malloc-tuned hint.
FAULTS_PER_STEP_HINT = 1000
MNIST_EPOCH_STEPS = 600


# --------------------------------------------------------------------------- arithmetic
def layer_sizes() -> list[int]:
    """[784, 100, 100, 10]."""
    return [math.prod(IMAGE_SHAPE), *ARCH["widths"], NUM_CLASSES]


def flop_per_trial_step(sizes: list[int], batch: int) -> float:
    """FLOP of one training step of one trial (matmuls only; 1 multiply-add = 2 FLOP).

    forward:              2·B·Σ_l in_l·out_l            (784·100 + 100·100 + 100·10 = 89 400)
    backward, weights:    2·B·Σ_l in_l·out_l            (same as forward)
    backward, inputs:     2·B·Σ_{l≥2} in_l·out_l        (no gradient w.r.t. the images)
    -> 2·100·(2·89 400 + 11 000) ≈ 38 MFLOP at B = 100.
    """
    macs = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2.0 * batch * (2 * sum(macs) + sum(macs[1:]))


class InMemoryMNIST(datasets.VisionDataset):
    """``torchvision.datasets.MNIST`` without its files: the same ``data``/``targets`` attributes
    and torchvision's own ``__getitem__`` (PIL image per sample, then the transform)."""

    __getitem__ = datasets.MNIST.__getitem__

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        super().__init__(root=None, transform=transforms.ToTensor())
        self.data = torch.from_numpy(np.ascontiguousarray(images[:, 0]))  # uint8 [N, 28, 28]
        self.targets = torch.from_numpy(labels)  # int64 [N]

    def __len__(self) -> int:
        return len(self.data)


def endless(loader) -> Iterator:
    """Batches of ``loader`` epoch after epoch (a fresh shuffle every epoch)."""
    while True:
        yield from loader


def sequential_dnn(device: torch.device, generator: torch.Generator | None = None) -> nn.Module:
    """The 784-100-100-10 net as ``nn.Sequential``, every parameter drawn from N(0, 0.1²)
    (from ``generator``, else torch's global one)."""
    sizes = layer_sizes()
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(sizes[0], sizes[1]),
        nn.ReLU(),
        nn.Linear(sizes[1], sizes[2]),
        nn.ReLU(),
        nn.Linear(sizes[2], sizes[3]),
    )
    for p in model.parameters():
        nn.init.normal_(p, std=INIT_STD, generator=generator)
    return model.to(device)


def torchvision_style(images, labels, steps: int, device: torch.device) -> Method:
    """(a) one trial: torchvision-style dataset + DataLoader + nn.Sequential + Adam."""
    loader = DataLoader(InMemoryMNIST(images, labels), batch_size=BATCH, shuffle=True)
    sizes = layer_sizes()
    model = sequential_dnn(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    batches = endless(loader)

    def run():
        for x, y in itertools.islice(batches, steps):  # x [100, 1, 28, 28], y [100]
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()

    flop = steps * flop_per_trial_step(sizes, BATCH)
    return Method("(a) torchvision-style", 1, steps, flop, run)


def in_memory_reference(data: TensorData, settings: TrainSettings, steps: int) -> Method:
    """(b) one trial of the DNN over in-memory tensors."""
    flop = flop_per_trial_step(layer_sizes(), BATCH)
    return reference_method(
        "(b) in-memory tensors", get_family("dnn"), ARCH, data, settings, steps, flop
    )


def batched_trainer(
    data: TensorData, settings: TrainSettings, trials: int, dynamics: bool = False
) -> Method:
    """(c) ``trials`` DNN trials at once (with the layer dynamics when ``dynamics``)."""
    flop = flop_per_trial_step(layer_sizes(), BATCH)
    return trainer_method(
        "(c) batched trainer", get_family("dnn"), ARCH, data, settings, trials, flop, dynamics
    )


MATMULS_ALONE = "(e) (c)'s matmuls alone"


def matmuls_alone(trials: int, steps: int, device: torch.device) -> Method:
    """Only the batched matmuls of ``steps`` of (c)'s steps, as the trainer runs them (weights
    stored ``[T, in, out]``): per layer the forward ``baddbmm`` and the weight gradient
    ``hᵀ @ grad``, from layer 2 on the input gradient ``grad @ Wᵀ``. No step of this design
    can be faster; (c) over this is what its other work (Adam, gather, loss, relu) costs."""
    g = torch.Generator().manual_seed(0)
    sizes = layer_sizes()

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g).to(device)

    layers = [
        (
            rand(trials, BATCH, n_in),  # h
            rand(trials, n_in, n_out),  # w
            rand(trials, n_out),  # b
            rand(trials, BATCH, n_out),  # grad
        )
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]

    def run():
        for _ in range(steps):
            for i, (h, w, b, grad) in enumerate(layers):
                torch.baddbmm(b.unsqueeze(1), h, w)  # [T, B, out]
                torch.bmm(h.transpose(1, 2), grad)  # [T, in, out]
                if i > 0:
                    torch.bmm(grad, w.transpose(1, 2))  # [T, B, in]

    flop = flop_per_trial_step(sizes, BATCH)
    return Method(MATMULS_ALONE, trials, steps, steps * trials * flop, run)


def torch_func_recipe(data: TensorData, trials: int, steps: int) -> Method:
    """(d) PyTorch's documented model-ensembling recipe, trained: ``trials`` copies of the
    ``nn.Sequential`` of (a), ``torch.func.stack_module_state``, ``vmap(functional_call)``
    and one ``torch.optim.Adam`` (its defaults: ``foreach`` on the CPU) over the stacked
    parameters. Same init policy (one generator per trial, N(0, 0.1²)), per-trial data order
    and per-trial mean loss as (c); one call = one epoch of ``steps`` steps."""
    sizes = layer_sizes()
    arch_name = "recipe"
    seeds = trial_seeds(BASE_SEED, "bench", arch_name, range(trials))
    device = data.x_train.device
    models = [sequential_dnn(device, torch.Generator().manual_seed(seed)) for seed in seeds]
    params, buffers = stack_module_state(models)  # {name: [T, ...]} leaves
    base = copy.deepcopy(models[0]).to("meta")
    optimizer = torch.optim.Adam(list(params.values()), lr=LR)
    generators = data_generators(seeds)
    n = data.x_train.shape[0]

    def one_model(p, b, x):  # x [B, 1, 28, 28] -> [B, 10]
        return functional_call(base, (p, b), (x,))

    ensemble = torch.vmap(one_model)

    def run():
        order = epoch_orders(generators, n).to(data.x_train.device)  # [T, n]
        for sl in batch_slices(n, BATCH):
            idx = order[:, sl]  # [T, B]
            logits = ensemble(params, buffers, data.x_train[idx])  # [T, B, 10]
            loss = F.cross_entropy(
                logits.reshape(-1, NUM_CLASSES), data.y_train[idx].reshape(-1), reduction="none"
            )
            optimizer.zero_grad(set_to_none=True)
            loss.view(trials, -1).mean(1).sum().backward()
            optimizer.step()

    flop = trials * steps * flop_per_trial_step(sizes, BATCH)
    return Method("(d) torch.func recipe", trials, steps, flop, run)


def target_lines(rows: list[Row], device: torch.device) -> list[str]:
    """Checks against the targets of benchmarks/README.md (needs (c) at 100 trials)."""
    row = next((r for r in rows if r.method.startswith("(c)") and r.trials == 100), None)
    if row is None:
        return []
    if device.type == "cpu":
        ok = row.x_a >= TARGET_CPU_X_A and (row.pct_matmul or 0) >= TARGET_CPU_PCT_MATMUL
        return [
            f"- target (CPU): (c) ×100 = {row.x_a:.1f}× (a) (≥ {TARGET_CPU_X_A:g}×) and "
            f"{fmt(row.pct_matmul, '.0f')}% of matmul (≥ {TARGET_CPU_PCT_MATMUL:g}%): "
            f"{'met' if ok else 'NOT met'}"
        ]
    ok = row.x_a >= TARGET_GPU_X_A
    return [
        f"- target (GPU): (c) ×100 = {row.x_a:.0f}× (a) (≥ {TARGET_GPU_X_A:g}×): "
        f"{'met' if ok else 'NOT met'}"
    ]


def dynamics_cost_lines(rows: list[Row], device: torch.device) -> list[str]:
    """What recording the layer dynamics costs, from (c) timed without and with them.

    The recording runs once per epoch: measured over a call of ``steps`` steps, its time
    is ``(rate_off / rate_on - 1) * steps`` steps' worth, which is then spread over an
    MNIST epoch of ``MNIST_EPOCH_STEPS`` steps (training steps only, so an upper bound)."""
    lines = []
    for off in (r for r in rows if r.method == "(c) batched trainer"):
        on = next(
            (r for r in rows if r.method.endswith(DYNAMICS_LABEL) and r.trials == off.trials), None
        )
        if on is None:
            continue
        extra = off.trial_steps_per_s / on.trial_steps_per_s - 1  # share of a call's time
        per_epoch = 100 * extra * off.steps_per_call / MNIST_EPOCH_STEPS
        line = (
            f"- dynamics (c) ×{off.trials}: {100 * extra:+.1f} % over {off.steps_per_call} "
            f"steps, {per_epoch:+.2f} % of an MNIST epoch ({MNIST_EPOCH_STEPS} steps)"
        )
        if off.trials == 100 and device.type == "cpu":
            ok = per_epoch <= TARGET_DYNAMICS_PCT
            line += f" (target ≤ {TARGET_DYNAMICS_PCT:g} %: {'met' if ok else 'NOT met'})"
        lines.append(line)
    return lines


def malloc_hint_lines(rows: list[Row], device: torch.device) -> list[str]:
    """Page faults per step of every (c) run, and a hint when they look like re-mapping."""
    if device.type != "cpu":
        return []
    batched = [r for r in rows if r.method.startswith("(c)")]
    lines = [
        "- minor page faults per step: "
        + ", ".join(
            f"(c) ×{r.trials}{r.method.removeprefix('(c) batched trainer')}: "
            f"{r.faults_per_step:,.0f}"
            for r in batched
        )
    ]
    tuned = all(os.environ.get(k) == v for k, v in MALLOC_TUNED_ENV.items())
    heavy = [r for r in batched if r.faults_per_step > FAULTS_PER_STEP_HINT]
    if heavy and not tuned:
        largest = max(heavy, key=lambda r: r.trials)
        fc1_grad = largest.trials * math.prod(layer_sizes()[:2]) * 4  # [T, 100, 784] fp32 bytes
        lines.append(
            f"- hint: (c) ×{largest.trials} faults in fresh pages every step: tensors allocated "
            f"per step (e.g. the fc1 gradient, {fc1_grad / 1e6:.0f} MB) go back to the kernel "
            f"on free (glibc mmap threshold ≤ {GLIBC_MMAP_THRESHOLD_MAX >> 20} MiB, heap trim). "
            "Rerun with --malloc-tuned to measure what that costs."
        )
    return lines


def recipe_lines(methods: list[Method], rows: list[Row], device: torch.device) -> list[str]:
    """(c) over (d) at every ensemble size, the 1000-vs-100 check, and the CPU targets."""
    batched = {m.trials: m for m in methods if m.name == "(c) batched trainer"}
    recipe = {m.trials: m for m in methods if m.name.startswith("(d)")}
    lines = []
    for t in sorted(set(batched) & set(recipe)):
        ratios = round_ratios(batched[t], recipe[t])
        line = f"- (c) ×{t} / (d) ×{t} (torch.func recipe) = "
        if t == 100 and device.type == "cpu":
            row = next(r for r in rows if r.method == "(c) batched trainer" and r.trials == 100)
            pct = row.pct_matmul or 0
            ok = pct >= TARGET_CPU_PCT_MATMUL
            line += (
                f"{ratio_verdict(ratios, TARGET_CPU_X_RECIPE)}; {pct:.0f} % of matmul: "
                f"target ≥ {TARGET_CPU_PCT_MATMUL:g} % {'met' if ok else 'NOT met'}"
            )
        else:
            line += f"{statistics.median(ratios):.2f}×"
        lines.append(line)
    alone = next((m for m in methods if m.name == MATMULS_ALONE), None)
    if alone is not None and 100 in batched:
        line = f"- (c) ×100 / (e) ×100 (its matmuls alone) = {round_ratio(batched[100], alone):.2f}"
        if 100 in recipe:
            line += (
                f"; (e) ×100 / (d) ×100 = {round_ratio(alone, recipe[100]):.2f}×, the most a "
                "step of these matmuls could beat the recipe by"
            )
        lines.append(line)
    if 100 in batched and 1000 in batched:
        ratio = round_ratio(batched[1000], batched[100])
        verdict = "met" if ratio >= 1.0 else "NOT met"
        lines.append(
            f"- (c) ×1000 / (c) ×100 per trial-step = {ratio:.2f} "
            f"(target: no worse per trial at 1000, ≥ 1: {verdict})"
        )
    return lines


# --------------------------------------------------------------------------- main
FULL_DEFAULTS = {"steps": 100, "repeats": 3, "matmul_seconds": 0.5}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = ["--steps", "--steps-a", "--trials", "--repeats", "--device", "--threads", "--data"]
    names += ["--matmul-seconds", "--csv", "--malloc-tuned", "--quick", "--dynamics"]
    names += ["--no-recipe", "--matmul-bound", "--profile"]
    add_options(p, names, FULL_DEFAULTS, QUICK_DEFAULTS)
    args = p.parse_args(argv)
    apply_defaults(args, FULL_DEFAULTS, QUICK_DEFAULTS)
    if args.steps_a is None:
        args.steps_a = args.steps
    check_positive(p, args, ["--steps", "--steps-a", "--repeats", "--trials"])
    return args


def reexec_with_tuned_malloc() -> None:
    """Replace this process by the same command with ``MALLOC_TUNED_ENV`` set (glibc reads the
    variables at start-up, so they cannot be changed from inside)."""
    if all(os.environ.get(k) == v for k, v in MALLOC_TUNED_ENV.items()):
        return
    env = {**os.environ, **MALLOC_TUNED_ENV}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def build_methods(args, device: torch.device) -> tuple[list[Method], str]:
    n_train = args.steps * BATCH  # one epoch of (c) = args.steps steps
    images, labels, source = load_images(args.data, max(n_train, args.steps_a * BATCH))
    settings = train_settings(device)
    data = tensor_data(images, labels, n_train, device)
    methods = [
        torchvision_style(
            images[: args.steps_a * BATCH], labels[: args.steps_a * BATCH], args.steps_a, device
        ),
        in_memory_reference(data, settings, args.steps),
        *(
            batched_trainer(data, settings, t, dynamics)
            for t in args.trials
            for dynamics in {"off": [False], "on": [True], "both": [False, True]}[args.dynamics]
        ),
        *([] if args.no_recipe else [torch_func_recipe(data, t, args.steps) for t in args.trials]),
        *([matmuls_alone(100, args.steps, device)] if args.matmul_bound else []),
        matmul(device, args.matmul_seconds),
    ]
    return methods, source


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.malloc_tuned:
        reexec_with_tuned_malloc()
    device = setup_device(args)
    methods, source = build_methods(args, device)
    run_rounds(methods, args.repeats, device)
    rows = summarize(methods)
    flop = flop_per_trial_step(layer_sizes(), BATCH)
    summary = (
        f"- medians over {args.repeats} timed round(s) after a warm-up round; "
        f"(a) {args.steps_a} steps/call, (b)/(c) {args.steps} steps/call; "
        f"{flop / 1e6:.2f} MFLOP per trial-step (batch {BATCH})"
    )
    lines = [
        summary,
        *target_lines(rows, device),
        *recipe_lines(methods, rows, device),
        *dynamics_cost_lines(rows, device),
        *malloc_hint_lines(rows, device),
        *machine_lines(device, source),
    ]
    if args.profile:
        largest = max(
            (m for m in methods if m.name == "(c) batched trainer"), key=lambda m: m.trials
        )
        lines[1:1] = profile_lines(largest)
    print_report(rows, lines, args)


if __name__ == "__main__":
    main()
