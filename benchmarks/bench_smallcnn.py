"""The Small CNN Zoo network's training step on the CPU: the ways to run its trials.

The companion of ``bench_models.py`` on the same machinery (weightzoo.bench: interleaved
rounds, round 0 a warm-up, medians, ratios formed within a round). The network is the zoo's
(``smallcnn``, 3 valid 3x3 convs of 16 kernels, stride 2, relu, global average pooling, FC
16 -> 10: 4,970 parameters on 1x28x28 images) with the zoo's batch of 512, Adam (lr 1e-3),
normal init N(0, ``--init-std``²) with zero biases, float32, 28x28x1 uint8 noise unless
``--data`` asks for Fashion-MNIST (the speed does not depend on it).

Rows: ``EnsembleTrainer.train_epoch`` (``--steps`` steps of T trials, T in ``--trials``) for
every ``--strategies`` entry, the ratio column over ``loop`` (the per-trial oneDNN loop) at
the same T in the same round. Strategies:

* ``loop``, ``loop_nhwc``, ``grouped``: the family's own (``weightzoo.train.models.SmallCNN``).
* ``loop_channels_last`` (measurement only): ``loop`` with each trial's images in
  channels-last memory, so that every conv (the first too) runs oneDNN in NHWC.
* ``loop_unfold`` (measurement only): every conv of every trial as ``F.unfold`` (im2col) and
  one matmul, through autograd, NCHW.

Every per-trial form is bit-identical alone or in any ensemble (each trial runs the same ops
on the same shapes); ``grouped`` is not (oneDNN picks its algorithm by T).

``--denormals`` times instead what ``torch.set_flush_denormal(True)`` changes: the default
CPU strategy at the largest ``--trials``, init std 1e-3 and 0.1, each with flush off and on,
and says whether a flushed run ends on the same bits as an unflushed one. The flag is
per thread: it reaches only the work torch runs on the calling thread (all of it with
``--threads 1``).

FLOP per trial-step are counted by ``torch.utils.flop_counter`` on one training step of the
reference module at batch 512 (convolutions and matmuls, forward and backward, no gradient
for the images).

Run ``python benchmarks/bench_smallcnn.py --help``; ``benchmarks/README.md`` explains the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from weightzoo.bench.harness import (
    QUICK_DEFAULTS,
    Method,
    Row,
    add_options,
    apply_defaults,
    check_positive,
    matmul,
    print_report,
    ratio_verdict,
    round_ratios,
    run_rounds,
    setup_device,
    summarize,
)
from weightzoo.bench.machine import machine_lines
from weightzoo.bench.profile import COPY_OPS, MATMUL_OPS, profile_lines
from weightzoo.bench.targets import TARGET_TRIALS
from weightzoo.bench.training import (
    BASE_SEED,
    load_images,
    tensor_data,
    train_settings,
    trainer_method,
)
from weightzoo.train.models import (
    CNN_KERNEL,
    SMALLCNN_STRATEGIES,
    SMALLCNN_STRIDE,
    SmallCNN,
    family_for_device,
)
from weightzoo.train.seeds import trial_seeds
from weightzoo.train.trainer import EnsembleTrainer, TensorData, TrainSettings

ARCH = {"channels": 16}  # the zoo's network: 3 valid layers
BATCH = 512  # the zoo's batch (config/small-cnn-zoo.yaml)
FULL_DEFAULTS = {"steps": 2, "repeats": 5, "matmul_seconds": 0.5}
BASE_STRATEGY = "loop"
# a strategy this much faster than the loop at 100 trials becomes the CPU default
SWITCH_RATIO = 1.5
DENORMAL_STDS = (1e-3, 0.1)
BITS_EPOCHS = 5  # epochs of --steps steps that --denormals trains with flush off and on


# --------------------------------------------------------------------------- forms
def unfold_conv(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """One trial's 3x3, stride-2, valid conv as ``F.unfold`` and one matmul: h
    ``[B, Cin, H, W]`` -> ``[B, C, H', W']``."""
    n, _, height, width = h.shape
    h_out, w_out = ((size - CNN_KERNEL) // SMALLCNN_STRIDE + 1 for size in (height, width))
    cols = F.unfold(h, CNN_KERNEL, stride=SMALLCNN_STRIDE)  # [B, Cin*9, H'*W']
    out = torch.matmul(w.flatten(1), cols) + b.unsqueeze(1)  # [B, C, H'*W']
    return out.view(n, -1, h_out, w_out)


def onednn_conv(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return F.conv2d(h, w, b, SMALLCNN_STRIDE)  # [B, C, H', W']


def channels_last(x: Tensor) -> Tensor:
    return x.contiguous(memory_format=torch.channels_last)


class MeasuredLoop(SmallCNN):
    """A per-trial form the trainer does not have, for measuring only: each trial's images
    through ``prepare``, every conv by ``conv``, relu, no dropout, valid padding."""

    def __init__(self, name: str, conv, prepare=lambda x: x):
        super().__init__("loop")
        self.strategy, self.conv, self.prepare = name, conv, prepare

    def forward(self, params, x, arch=None, *, activation="relu", dropout=None):
        if dropout is not None or activation != "relu" or self._padding(arch or {}) != "valid":
            raise ValueError(f"{self.strategy} is measured with relu, no dropout, valid padding")
        n_layers = sum(1 for k in params if k.startswith("conv") and k.endswith("weight"))
        names = [f"conv{i}.{kind}" for i in range(1, n_layers + 1) for kind in ("weight", "bias")]
        stacked = [params[k].unbind(0) for k in (*names, "fc.weight", "fc.bias")]
        logits = []
        for xt, *trial in zip(x.unbind(0), *stacked, strict=True):
            h = self.prepare(xt)  # [B, Cin, H, W]
            for i in range(n_layers):
                h = F.relu(self.conv(h, trial[2 * i], trial[2 * i + 1]))  # [B, C, H', W']
            logits.append(F.linear(h.mean(dim=(2, 3)), trial[-2], trial[-1]))  # [B, classes]
        return torch.stack(logits)  # [T, B, classes]


# every conv through oneDNN in NHWC (channels-last images make the first one NHWC too), or
# every conv as F.unfold + matmul in NCHW
MEASURED_FORMS = {
    "loop_channels_last": lambda: MeasuredLoop("loop_channels_last", onednn_conv, channels_last),
    "loop_unfold": lambda: MeasuredLoop("loop_unfold", unfold_conv),
}
STRATEGIES = (*SMALLCNN_STRATEGIES, *MEASURED_FORMS)


def strategy_family(strategy: str) -> SmallCNN:
    form = MEASURED_FORMS.get(strategy)
    return form() if form else SmallCNN(strategy)


# --------------------------------------------------------------------------- setup
def flop_per_trial_step(data: TensorData) -> float:
    """FLOP of one training step of one trial at batch 512, on the reference module."""
    model = SmallCNN().reference_module(ARCH, data.input_shape, data.num_classes)
    x, y = data.x_train[:BATCH], data.y_train[:BATCH]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


def zoo_settings(device: torch.device, init_std: float) -> TrainSettings:
    """The benchmark's settings (bench.training) at the zoo's batch, zero biases."""
    return dataclasses.replace(
        train_settings(device), batch_size=BATCH, init_std=init_std, bias_init="zeros"
    )


def strategy_methods(
    args: argparse.Namespace, data: TensorData, device: torch.device, flop: float
) -> dict[int, list[Method]]:
    """Per ``--trials`` T, one (c) row per strategy, ``loop`` first (the ratio's base)."""
    settings = zoo_settings(device, args.init_std)
    ordered = [BASE_STRATEGY, *(s for s in args.strategies if s != BASE_STRATEGY)]
    return {
        t: [
            trainer_method(
                f"(c) batched trainer, {s}", strategy_family(s), ARCH, data, settings, t, flop
            )
            for s in ordered
        ]
        for t in args.trials
    }


def flushing(method: Method, name: str) -> Method:
    """``method`` run with ``torch.set_flush_denormal(True)`` (on the calling thread)."""

    def run():
        torch.set_flush_denormal(True)
        try:
            method.run()
        finally:
            torch.set_flush_denormal(False)

    return Method(name, method.trials, method.steps, method.flop_per_call, run)


def denormal_methods(
    args: argparse.Namespace, data: TensorData, device: torch.device, flop: float
) -> dict[float, list[Method]]:
    """Per init std, the default CPU strategy at the largest ``--trials``: flush off (the
    ratio's base), flush on, and flush off again, a control for the place in the round."""
    family = family_for_device("smallcnn", "auto", device)
    trials = max(args.trials)
    methods = {}
    for std in DENORMAL_STDS:
        name = f"(c) {family.strategy}, init std {std:g}"
        settings = zoo_settings(device, std)
        plain, flushed, again = (
            trainer_method(name, family, ARCH, data, settings, trials, flop) for _ in range(3)
        )
        again.name += ", again (control)"
        methods[std] = [plain, flushing(flushed, name + ", flush denormals"), again]
    return methods


def flush_changes_bits(
    data: TensorData, device: torch.device, std: float, trials: int, epochs: int
) -> str:
    """Train the same trials for ``epochs`` epochs with flush off and on: the same bits or
    not, and how many parameters ended subnormal."""
    family = family_for_device("smallcnn", "auto", device)
    seeds = trial_seeds(BASE_SEED, "bench", family.arch_name(ARCH), range(trials))
    finals = []
    for flush in (False, True):
        trainer = EnsembleTrainer(family, ARCH, seeds, data, zoo_settings(device, std))
        torch.set_flush_denormal(flush)
        try:
            for _ in range(epochs):
                trainer.train_epoch()
        finally:
            torch.set_flush_denormal(False)
        finals.append(trainer.snapshot())
    off, on = finals
    differ = [k for k in off if not (off[k] == on[k]).all()]
    tiny = torch.finfo(torch.float32).tiny
    subnormal = sum(int(((v != 0) & (abs(v) < tiny)).sum()) for v in off.values())
    verdict = "the same bits" if not differ else f"different bits in {', '.join(differ)}"
    steps = epochs * len(range(0, data.x_train.shape[0], BATCH))
    return (
        f"- init std {std:g}, {trials} trials, {steps} steps: flush on and off end on "
        f"{verdict}; {subnormal} subnormal parameters"
    )


# --------------------------------------------------------------------------- report
def summarize_groups(groups: dict, mm: Method) -> list[Row]:
    """Rows of each group (ratio to the group's first method), then the matmul's once."""
    rows = []
    for methods in groups.values():
        *group_rows, mm_row = summarize([*methods, mm], base=methods[0])
        rows += group_rows
    return [*rows, mm_row]


def verdict_lines(groups: dict[int, list[Method]]) -> list[str]:
    """Each strategy's ratio to ``loop`` at 100 trials, with the rounds' spread and whether
    it reaches the ratio that makes a strategy the CPU default."""
    base, *others = groups.get(TARGET_TRIALS, [None])
    return [
        f"- {m.name} ×{m.trials} / loop = {ratio_verdict(round_ratios(m, base), SWITCH_RATIO)}"
        for m in others
    ]


def spread(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}× (rounds {min(ratios):.2f}–{max(ratios):.2f})"


def denormal_lines(groups: dict[float, list[Method]]) -> list[str]:
    """Per init std, flush on over off and the control (off again) over off."""
    return [
        f"- init std {std:g}: flush on / off = {spread(round_ratios(flushed, plain))}; "
        f"off again / off = {spread(round_ratios(again, plain))}"
        for std, (plain, flushed, again) in groups.items()
    ]


PROFILE_CATEGORIES = {
    "conv (oneDNN forward and backward)": (
        "aten::mkldnn_convolution",
        "aten::convolution_backward",
        "aten::_convolution",
    ),
    "matmul (mm, addmm, bmm)": MATMUL_OPS,
    "im2col (unfold, im2col, col2im)": ("aten::im2col", "aten::col2im", "aten::unfold"),
    "activation (relu, tanh, their gradient)": (
        "aten::clamp_min",
        "aten::relu",
        "aten::tanh",
        "aten::threshold_backward",
        "aten::tanh_backward",
    ),
    "copies (copy_, cat, clone, stack)": (*COPY_OPS, "aten::stack"),
}


# --------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_options(p, ["--steps", "--trials", "--repeats"], FULL_DEFAULTS, QUICK_DEFAULTS)
    p.add_argument(
        "--strategies",
        nargs="+",
        choices=STRATEGIES,
        default=list(STRATEGIES),
        help="the ways to run the trials, timed side by side (loop always: the ratios' base)",
    )
    p.add_argument("--init-std", type=float, default=0.1, help="init N(0, std²) (default 0.1)")
    p.add_argument(
        "--denormals",
        action="store_true",
        help="time torch.set_flush_denormal(True) against off at init std 1e-3 and 0.1 "
        "(default CPU strategy, largest --trials) instead of the strategies",
    )
    names = ["--device", "--threads", "--data", "--matmul-seconds", "--csv", "--quick", "--profile"]
    add_options(p, names, FULL_DEFAULTS, QUICK_DEFAULTS)
    p.set_defaults(data="synthetic", trials=[1, 10, 100])
    args = p.parse_args(argv)
    apply_defaults(args, FULL_DEFAULTS, QUICK_DEFAULTS)
    check_positive(p, args, ["--steps", "--repeats", "--trials"])
    if args.init_std <= 0:
        p.error(f"--init-std must be positive, got {args.init_std}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    device = setup_device(args)
    n_train = args.steps * BATCH  # one epoch = args.steps steps
    images, labels, source = load_images(args.data, n_train)
    data = tensor_data(images, labels, n_train, device)
    flop = flop_per_trial_step(data)
    if args.denormals:
        groups = denormal_methods(args, data, device, flop)
    else:
        groups = strategy_methods(args, data, device, flop)
    mm = matmul(device, args.matmul_seconds)
    run_rounds([*(m for ms in groups.values() for m in ms), mm], args.repeats, device)
    rows = summarize_groups(groups, mm)
    lines = [
        f"- medians over {args.repeats} timed round(s) after a warm-up round; {args.steps} "
        f"steps of batch {BATCH} per call; × {'flush off' if args.denormals else 'loop'} = "
        "over the first row of its group in the same round",
        f"- MFLOP per trial-step (batch {BATCH}, forward + backward): {flop / 1e6:.1f}",
    ]
    if args.denormals:
        lines += denormal_lines(groups)
        lines += [
            flush_changes_bits(data, device, std, max(args.trials), BITS_EPOCHS)
            for std in DENORMAL_STDS
        ]
    else:
        lines += verdict_lines(groups)
    if args.profile:  # one call of every row at the largest --trials
        largest = [m for ms in groups.values() for m in ms if m.trials == max(args.trials)]
        lines += [line for m in largest for line in profile_lines(m, PROFILE_CATEGORIES)]
    lines += machine_lines(device, source)
    # how idle OpenMP threads wait decides the 2-thread timings on a shared machine
    # (benchmarks/README.md); libgomp reads it at start-up
    lines.append(f"- OMP_WAIT_POLICY: {os.environ.get('OMP_WAIT_POLICY', 'not set')}")
    print_report(rows, lines, args, base="flush off" if args.denormals else "loop")


if __name__ == "__main__":
    main()
