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
import csv
import itertools
import math
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from weightzoo.train.device import apply_device_settings, resolve_device
from weightzoo.train.dynamics import DynamicsRecorder
from weightzoo.train.models import ModelFamily, get_family
from weightzoo.train.reference import reference_model
from weightzoo.train.trainer import (
    EnsembleTrainer,
    TensorData,
    TrainSettings,
    batch_slices,
    data_generators,
    epoch_orders,
    trial_seed,
)

ARCH = {"widths": [100, 100]}
IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
BATCH = 100
LR = 1e-3
INIT_STD = 0.1
MATMUL_N = 1024
BASE_SEED = 0

# glibc hands allocations above its mmap threshold (dynamic, at most this on 64-bit) straight to
# mmap and unmaps them on free, and trims a large free heap top; a big tensor allocated anew every
# step (the [T, 100, 784] fc1 gradient is 31 MB at T = 100) then gets fresh, faulting pages
# every step.
GLIBC_MMAP_THRESHOLD_MAX = 32 << 20
# What --malloc-tuned sets before re-running the script. THP_MEM_ALLOC_ENABLE makes torch align
# big CPU tensors to 2 MiB (transparent huge pages); the MALLOC_* values keep freed memory in
# the process instead of returning it to the kernel.
MALLOC_TUNED_ENV = {
    "THP_MEM_ALLOC_ENABLE": "1",
    "MALLOC_MMAP_THRESHOLD_": str(1 << 36),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 36),
}
ALLOCATOR_ENV_VARS = (*MALLOC_TUNED_ENV, "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_", "LD_PRELOAD")
# A (c) run re-faulting more pages than this per step gets the --malloc-tuned hint.
FAULTS_PER_STEP_HINT = 1000

TARGET_CPU_X_A = 15.0
TARGET_CPU_PCT_MATMUL = 60.0
TARGET_CPU_X_RECIPE = 2.0  # (c) over (d) at 100 trials (issue 11)
TARGET_GPU_X_A = 300.0
# recording the layer dynamics may cost at most this share of training time (CPU, 100
# trials), taken over one epoch of MNIST / Fashion-MNIST: 60 000 images / batch 100
TARGET_DYNAMICS_PCT = 10.0
MNIST_EPOCH_STEPS = 600
DYNAMICS_LABEL = " + dynamics"


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


# --------------------------------------------------------------------------- data
def load_images(source: str, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` training images uint8 ``[n, 1, 28, 28]`` and labels int64 ``[n]``, plus where they
    came from. Real Fashion-MNIST when it is installed (tiled if ``n`` > 60 000), else noise."""
    if source in ("auto", "fashion-mnist"):
        try:
            from weightzoo.data.datasets import read_raw

            raw = read_raw(
                "fashion-mnist", download=False, verify_checksums=False, log=lambda _: None
            )
            reps = math.ceil(n / len(raw.x_train))
            x = np.concatenate([raw.x_train] * reps)[:n]
            y = np.concatenate([raw.y_train] * reps)[:n]
            return x, y, f"fashion-mnist ({raw.source})"
        except Exception as e:  # not installed / unreadable: fall back unless asked for it
            if source == "fashion-mnist":
                raise
            print(
                f"note: fashion-mnist unavailable ({type(e).__name__}), using noise",
                file=sys.stderr,
            )
    rng = np.random.default_rng(BASE_SEED)
    x = rng.integers(0, 256, size=(n, *IMAGE_SHAPE), dtype=np.uint8)
    y = rng.integers(0, NUM_CLASSES, size=n, dtype=np.int64)
    return x, y, "synthetic uint8 noise"


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


def reference_batches(seed: int, n: int, device: torch.device) -> Iterator[Tensor]:
    """Index batches ``[100]`` of one trial's data order, epoch after epoch."""
    (gen,) = data_generators([seed])
    while True:
        order = epoch_orders([gen], n)[0].to(device)  # [n]
        for sl in batch_slices(n, BATCH):
            yield order[sl]


def reference_method(
    name: str,
    family: ModelFamily,
    arch: Mapping,
    data: TensorData,
    settings: TrainSettings,
    steps: int,
    flop_per_step: float,
) -> Method:
    """One trial of any family over in-memory tensors: the loop of ``train_reference``, setup
    untimed."""
    seed = trial_seed(BASE_SEED, "bench", family.arch_name(arch), 0)
    model = reference_model(family, arch, seed, data, settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    batches = reference_batches(seed, data.x_train.shape[0], data.x_train.device)

    def run():
        for idx in itertools.islice(batches, steps):  # idx [100]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return Method(name, 1, steps, steps * flop_per_step, run)


def trainer_method(
    name: str,
    family: ModelFamily,
    arch: Mapping,
    data: TensorData,
    settings: TrainSettings,
    trials: int,
    flop_per_step: float,
    dynamics: bool = False,
) -> Method:
    """``trials`` trials of any family at once; one ``train_epoch`` = ``len(x_train) / batch``
    steps, followed by the layer dynamics' recording when ``dynamics``."""
    arch_name = family.arch_name(arch)
    seeds = [trial_seed(BASE_SEED, "bench", arch_name, k) for k in range(trials)]
    trainer = EnsembleTrainer(family, arch, seeds, data, settings)
    steps = len(batch_slices(data.x_train.shape[0], settings.batch_size))
    flop = trials * steps * flop_per_step
    if not dynamics:
        return Method(name, trials, steps, flop, trainer.train_epoch)
    layers = [layer.param for layer in family.layers(arch)]
    recorder = DynamicsRecorder(trainer.params, layers, epochs=1)

    def epoch_and_dynamics():
        trainer.train_epoch()
        # what EnsembleTrainer.run does after each epoch (the divergence mask included)
        diverged = torch.from_numpy(np.zeros(trials, dtype=bool)).to(trainer.device)  # [T]
        recorder.record(trainer.params, 0, diverged)

    return Method(name + DYNAMICS_LABEL, trials, steps, flop, epoch_and_dynamics)


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
    seeds = [trial_seed(BASE_SEED, "bench", arch_name, k) for k in range(trials)]
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


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_lines(device: torch.device, data_source: str) -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if device.type == "cuda":
        device_name = f"cuda: {torch.cuda.get_device_name(device)}"
    else:
        device_name = device.type
    allocator = {k: os.environ[k] for k in ALLOCATOR_ENV_VARS if k in os.environ}
    libc = " ".join(platform.libc_ver()) or "unknown"
    thp = read_first_line("/sys/kernel/mm/transparent_hugepage/enabled")
    return [
        f"- CPU: {cpu_model()}; {os.cpu_count()} logical cores, {usable} usable",
        f"- torch {torch.__version__}, {torch.get_num_threads()} threads; device {device_name}; "
        f"float32 matmul precision {torch.get_float32_matmul_precision()}",
        f"- libc {libc}; transparent hugepages: {thp}; allocator env: {allocator or 'default'}",
        f"- data: {data_source}",
        f"- command: {shlex.join(sys.orig_argv)}",
    ]


def read_first_line(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.readline().strip()
    except OSError:
        return "n/a"


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


# op name prefix -> category of --profile's breakdown (ops inside the optimizer step count
# as "Adam step" whatever they are: the foreach Adam runs plain aten::sqrt, aten::lerp_, ...)
MATMUL_OPS = ("aten::bmm", "aten::baddbmm", "aten::mm", "aten::addmm")
COPY_OPS = ("aten::copy_", "aten::cat", "aten::clone")
PROFILE_CATEGORIES = {
    "matmul (bmm, baddbmm, mm)": MATMUL_OPS,
    "copies (copy_, cat, clone)": COPY_OPS,
    "data gather (index_select)": ("aten::index_select", "aten::index"),
    "loss (log_softmax, nll)": ("aten::_log_softmax", "aten::nll_loss", "aten::log_softmax"),
}
ADAM_STEP_RECORDS = ("weightzoo.adam_step", "Optimizer.step")


def inside_adam_step(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(ADAM_STEP_RECORDS):
            return True
        parent = parent.cpu_parent
    return False


def profile_category(event, categories: Mapping[str, tuple[str, ...]]) -> str:
    if inside_adam_step(event):
        return "Adam step"
    return next(
        (c for c, prefixes in categories.items() if event.name.startswith(prefixes)),
        "everything else",
    )


def profile_lines(
    method: Method, categories: Mapping[str, tuple[str, ...]] = PROFILE_CATEGORIES
) -> list[str]:
    """Share of self CPU time per category over one call of ``method`` (the first category,
    then the Adam step, then the others)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        method.run()
    first, *others = categories
    totals = dict.fromkeys([first, "Adam step", *others, "everything else"], 0.0)
    for event in prof.events():
        totals[profile_category(event, categories)] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    shares = ", ".join(f"{c} {100 * v / whole:.0f} %" for c, v in totals.items())
    return [f"- profile of {method.label} (self CPU time, one call): {shares}"]


# --------------------------------------------------------------------------- main
FULL_DEFAULTS = {"steps": 100, "repeats": 3, "matmul_seconds": 0.5}
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


def train_settings(device: torch.device, **changes) -> TrainSettings:
    """The benchmark's training settings: batch 100, Adam lr 1e-3, init N(0, 0.1²), float32."""
    return TrainSettings(
        epochs=1,
        batch_size=BATCH,
        lr=LR,
        init_std=INIT_STD,
        dtype="float32",
        device=str(device),
        **changes,
    )


def tensor_data(images, labels, n_train: int, device: torch.device) -> TensorData:
    """The first ``n_train`` images for training, the first batch as the (unused) test set."""
    return TensorData.from_arrays(
        images[:n_train],
        labels[:n_train],
        images[:BATCH],
        labels[:BATCH],
        pixel_max=255,
        device=device,
    )


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
