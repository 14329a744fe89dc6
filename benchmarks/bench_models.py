"""Throughput of the paper's CNN and ViT: one trial at a time vs. the batched trainer.

The companion of ``bench_dnn.py``; both run on weightzoo.bench (methods, interleaved rounds,
medians, table, machine description). Same training settings: batch 100, Adam (lr 1e-3),
init N(0, 0.1²), float32, 28x28x1 images (MNIST size; uint8 noise unless ``--data`` asks for
Fashion-MNIST, which does not change the speed). Methods, per model:

* (b) ``in-memory tensors``: one trial over pre-scaled float tensors on the device, the loop of
  ``weightzoo.train.reference.train_reference`` around the family's reference ``nn.Module`` (same
  init and data order as the batched trainer), ``--steps-b`` steps per call (default
  5 × ``--steps``, so that a burst of noise weighs less in its short call).
* (c) ``batched trainer``: ``EnsembleTrainer.train_epoch`` for T trials at once (``--trials``);
  the training set holds ``steps * 100`` samples, so one epoch is exactly ``steps`` steps. The
  CNN runs once per conv strategy (``--cnn-strategies``: ``loop``, one conv per trial;
  ``grouped``, one conv with ``groups=T``), the ViT has a single form. ``--compile`` adds,
  at the largest ``--trials``, the same with the batched forward compiled by
  ``torch.compile`` (a measurement; the trainer runs eager).
* ``matmul``: a plain 1024³ float32 matmul, the machine's arithmetic rate in the same run.

Shapes: the CNN is the paper's (Table 1): one valid 3x3 conv with ``--cnn-channels`` (16)
kernels, relu, a flatten head 26·26·16 -> 10 (``--cnn-head gap`` for the pooled one). The ViT
defaults to d_model 64, 4 heads, 7x7 patches (16 tokens), feed-forward 128, small enough for a
2-core CPU. The paper's d_model 784 (``config/config.yaml``: ``--vit-d-model 784
--vit-dim-feedforward 2048``, about 55 GFLOP per trial-step) is GPU territory.

FLOP per trial-step are counted by ``torch.utils.flop_counter`` on one training step of the
reference module at batch 100 (matmuls, convolutions and attention, forward and backward; no
gradient w.r.t. the images); the batched trainer does the same arithmetic per trial.

All methods of all models are interleaved round by round (CNN b, c..., ViT b, c..., matmul, CNN
b, ...); round 0 is a warm-up and is not reported. The ratio column divides by the same model's
(b) in the same round; the table shows medians over ``--repeats`` rounds.

Run ``python benchmarks/bench_models.py --help``; ``benchmarks/README.md`` explains the table.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

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
from weightzoo.bench.targets import TARGET_CPU_X_B, TARGET_TRIALS
from weightzoo.bench.training import (
    BATCH,
    IMAGE_SHAPE,
    NUM_CLASSES,
    load_images,
    reference_method,
    tensor_data,
    train_settings,
    trainer_method,
)
from weightzoo.train.models import CNN_HEADS, CNN_STRATEGIES, ModelFamily, family_for_device
from weightzoo.train.trainer import TensorData, TrainSettings

MODELS = ("cnn", "vit")
DISPLAY_NAMES = {"cnn": "CNN", "vit": "ViT"}
FULL_DEFAULTS = {"steps": 20, "repeats": 3, "matmul_seconds": 0.5}
STEPS_B_PER_STEP = 5  # (b)'s default steps per call, per --steps


# --------------------------------------------------------------------------- arithmetic
def _cpu_attention_flop(query, key, value, *args, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_attention_backward_flop(grad_out, query, key, value, *args, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's counter knows the CUDA attention kernels but not the CPU one (math fallback
# paths decompose into counted bmm's and need nothing); same formulas as for CUDA
CPU_ATTENTION_FLOP = {
    getattr(torch.ops.aten, name): formula
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _cpu_attention_flop),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_attention_backward_flop),
    )
    if hasattr(torch.ops.aten, name)
}


def flop_per_trial_step(family: ModelFamily, arch: dict, data: TensorData) -> float:
    """FLOP of one training step (forward + backward) of one trial at batch 100, counted on
    the family's reference module; the optimizer's elementwise work is not counted."""
    model = family.reference_module(arch, data.input_shape, data.num_classes)
    model.to(data.x_train.device)
    x, y = data.x_train[:BATCH], data.y_train[:BATCH]
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOP) as counter:
        F.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


# --------------------------------------------------------------------------- methods
@dataclasses.dataclass
class ModelMethods:
    """The (b) and (c) methods of one model (the ratio column divides by ``methods[0]``)."""

    model: str  # "cnn" or "vit": the key of its target
    label: str
    flop_per_step: float
    methods: list[Method]


def arch_of(model: str, args: argparse.Namespace) -> dict:
    if model == "cnn":
        return {"channels": args.cnn_channels, "head": args.cnn_head}
    return {
        "d_model": args.vit_d_model,
        "nhead": args.vit_nhead,
        "patch": args.vit_patch,
        "dim_feedforward": args.vit_dim_feedforward,
    }


def model_methods(
    model: str, args: argparse.Namespace, data: TensorData, device: torch.device
) -> ModelMethods:
    """(b), then (c) at every ``--trials`` for every strategy of ``model``."""
    arch = arch_of(model, args)
    family = family_for_device(model, "auto", device)
    label = f"{DISPLAY_NAMES[model]} {family.arch_name(arch)}"
    flop = flop_per_trial_step(family, arch, data)
    settings = train_settings(device)
    methods = [
        reference_method(
            f"{label} · (b) in-memory tensors", family, arch, data, settings, args.steps_b, flop
        )
    ]
    for strategy in args.cnn_strategies if model == "cnn" else ["auto"]:
        strategy_settings = dataclasses.replace(settings, strategy=strategy)
        batched = family_for_device(model, strategy, device)
        name = f"{label} · (c) batched trainer" + ("" if strategy == "auto" else f", {strategy}")
        methods += [
            trainer_method(name, batched, arch, data, strategy_settings, t, flop)
            for t in args.trials
        ]
        if args.compile:
            methods.append(
                compiled_trainer_method(
                    name, batched, arch, data, strategy_settings, max(args.trials), flop
                )
            )
    return ModelMethods(model, label, flop, methods)


COMPILED_LABEL = ", forward torch.compile'd"


def compiled_trainer_method(
    name: str,
    family: ModelFamily,
    arch: dict,
    data: TensorData,
    settings: TrainSettings,
    trials: int,
    flop: float,
) -> Method:
    """(c) at ``trials`` with the family's batched forward compiled by ``torch.compile``
    (Inductor; backward through AOTAutograd). A measurement only: the trainer never
    compiles, since compiled kernels round differently from eager ones. The warm-up round
    pays the compilation, so the timed rounds see the compiled step alone."""
    # a copy: family_for_device hands out the registered instance, which must stay eager
    compiled = copy.copy(family)
    compiled.forward = torch.compile(compiled.forward, dynamic=False)
    return trainer_method(name + COMPILED_LABEL, compiled, arch, data, settings, trials, flop)


# --profile's categories (self CPU time; ops inside the optimizer step count as Adam)
MODEL_PROFILE_CATEGORIES = {
    "conv (oneDNN forward and backward)": (
        "aten::mkldnn_convolution",
        "aten::convolution_backward",
        "aten::_convolution",
    ),
    "matmul (bmm, baddbmm, mm, addmm)": MATMUL_OPS,
    "attention": ("aten::_scaled_dot_product",),
    "copies (copy_, cat, clone)": (*COPY_OPS, "aten::stack"),
}


def model_profile_lines(models: list[ModelMethods]) -> list[str]:
    """Where one call of each model's (b) and of its (c) rows at the largest ``--trials``
    spends its CPU time: what (c) shares with (b) bounds what batching can gain."""
    lines = []
    for m in models:
        base, *batched = m.methods
        largest = max(x.trials for x in batched)
        for method in [base, *(x for x in batched if x.trials == largest)]:
            lines += profile_lines(method, MODEL_PROFILE_CATEGORIES)
    return lines


def target_lines(models: list[ModelMethods], device: torch.device) -> list[str]:
    """Each (c) row at 100 trials over its model's (b): median, spread over the rounds and
    the CPU target's verdict (nothing off the CPU, or without a 100-trial row)."""
    if device.type != "cpu":
        return []
    lines = []
    for m in models:
        target = TARGET_CPU_X_B[m.model]
        base, *batched = m.methods
        for method in batched:
            if method.trials == TARGET_TRIALS:
                verdict = ratio_verdict(round_ratios(method, base), target)
                lines.append(f"- {method.name} ×{method.trials} / (b) = {verdict}")
    return lines


def summarize_models(models: list[ModelMethods], mm: Method) -> list[Row]:
    """Rows of every model (ratios to its own (b)), then the matmul's row once."""
    rows = []
    for m in models:
        *model_rows, mm_row = summarize([*m.methods, mm], base=m.methods[0])
        rows += model_rows
    return [*rows, mm_row]


# --------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    add_options(p, ["--steps", "--trials", "--repeats"], FULL_DEFAULTS, QUICK_DEFAULTS)
    p.add_argument(
        "--cnn-strategies",
        nargs="+",
        choices=CNN_STRATEGIES,
        default=list(CNN_STRATEGIES),
        help="conv strategies of the CNN's (c) rows",
    )
    p.add_argument(
        "--steps-b",
        type=int,
        help="steps per timed call of (b) (default 5 × --steps: one trial's call would "
        "otherwise last ~0.1 s, short enough for one burst of noise to move its rate by a "
        "third; rates are per step)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="also time each model's (c) at the largest --trials with its batched forward "
        "compiled by torch.compile (a measurement: the trainer runs eager; the warm-up "
        "round pays the compilation, several seconds a model)",
    )
    p.add_argument("--cnn-channels", type=int, default=16, help="conv kernels (default 16)")
    p.add_argument("--cnn-head", choices=CNN_HEADS, default="flatten")
    p.add_argument("--vit-d-model", type=int, default=64, help="default 64 (paper: 784)")
    p.add_argument("--vit-nhead", type=int, default=4, help="default 4 (paper: 2, 4, 8, 16)")
    p.add_argument("--vit-patch", type=int, default=7, help="patch side (default 7: 16 tokens)")
    p.add_argument(
        "--vit-dim-feedforward", type=int, default=128, help="default 128 (config: 2048)"
    )
    names = ["--device", "--threads", "--data", "--matmul-seconds", "--csv", "--quick", "--profile"]
    add_options(p, names, FULL_DEFAULTS, QUICK_DEFAULTS)
    p.set_defaults(data="synthetic")
    args = p.parse_args(argv)
    apply_defaults(args, FULL_DEFAULTS, QUICK_DEFAULTS)
    if args.steps_b is None:
        args.steps_b = STEPS_B_PER_STEP * args.steps
    names = ["--steps", "--steps-b", "--repeats", "--trials", "--cnn-channels", "--vit-d-model"]
    check_positive(p, args, [*names, "--vit-nhead", "--vit-patch", "--vit-dim-feedforward"])
    for model in args.models:  # a ViT whose heads or patches do not fit stops here
        try:
            family_for_device(model, "auto", "cpu").param_shapes(
                arch_of(model, args), IMAGE_SHAPE, NUM_CLASSES
            )
        except ValueError as e:
            p.error(str(e))
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    device = setup_device(args)
    n_train = args.steps * BATCH  # one epoch of (c) = args.steps steps
    images, labels, source = load_images(args.data, n_train)
    data = tensor_data(images, labels, n_train, device)
    models = [model_methods(model, args, data, device) for model in args.models]
    mm = matmul(device, args.matmul_seconds)
    run_rounds([*(x for m in models for x in m.methods), mm], args.repeats, device)
    rows = summarize_models(models, mm)
    flop = ", ".join(f"{m.label} {m.flop_per_step / 1e6:.2f}" for m in models)
    lines = [
        f"- medians over {args.repeats} timed round(s) after a warm-up round; "
        f"(b) {args.steps_b} steps/call, (c) {args.steps}; "
        "× (b) = over the same model's (b) in the same round",
        f"- MFLOP per trial-step (batch {BATCH}, forward + backward): {flop}",
        *target_lines(models, device),
        *machine_lines(device, source),
    ]
    if args.profile:
        lines[2:2] = model_profile_lines(models)
    print_report(rows, lines, args, base="(b)")


if __name__ == "__main__":
    main()
