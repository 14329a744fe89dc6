"""What per-trial training settings cost: the batched trainer with one shared setting vs.
every trial with its own learning rate, weight decay, init std and dropout rate.

``EnsembleTrainer.train_epoch`` on the same net, data and ensemble size under each setting
(``--settings``), all Adam unless named:

* (1) ``shared``: one lr (1e-3), no weight decay, no dropout, init N(0, 0.1²): the trainer's
  fast path, one block-aligned fused Adam (``weightzoo.train.optim.make_adam``). The base of
  every row without dropout.
* (1d) ``shared-dropout``: (1) with every trial at the same dropout rate 0.35, its masks still
  drawn per trial, each from the trial's own generator (``weightzoo.train.dropout
  .TrialDropout``: a trial's masks must not depend on its ensemble). The base of (3); its
  own ratio over (1) is what dropout itself costs.
* (2a) ``lr``: per-trial lr and init std, no decay: the trainer's per-trial step
  (``weightzoo.train.optim.make_trial_optimizer``: ``TrialSliceOptimizer``, torch's fused
  kernel once per trial, for trials of at least 32,768 parameters; else
  ``PerTrialOptimizer``, torch's optimizer at lr 1 on scratch tensors, then a per-trial
  multiply).
* (2) ``lr-wd``: (2a) with per-trial weight decay (``g + wd·p`` before the step).
* (2i) ``lr-wd-fixed-init``: (2) with the init std shared at 0.1: the per-step machinery
  without the numbers a tiny init std leads to (``--flush-denormal`` tells whether denormal
  floats among them cost anything).
* (3) ``lr-wd-dropout``: (2) with a per-trial dropout rate, over (1d): what varying the
  settings per trial costs when both train with dropout.
* (4) ``sgd`` and (5) ``rmsprop``: (2) with SGD (momentum 0.9) or RMSprop.

The per-trial values are drawn by the trainer's own sampler (``weightzoo.train.variation
.sample_job``) from the distributions of ``config/small-cnn-zoo.yaml``. The nets
(``--nets``): the DNNs 784-100-100-10 and 784-20-20-10 and the Small CNN Zoo's ``smallcnn``
({channels: 16}, 1x28x28 images), batch 100, float32, uint8 noise (the speed does not
depend on the images). One timed call is one epoch of ``--steps`` steps
(``--smallcnn-steps`` for the small CNN, whose steps are slower).

Every method of every net is timed once per round, interleaved (round 0 is a warm-up and
is not reported), so that drift and neighbours hit them alike; ratios are formed within a
round and the table shows medians over ``--repeats`` rounds. Below it: each setting's rate
over its base at every ensemble size with the rounds' spread (and (3)'s over (1) as well),
the target's verdict at 100 trials for the per-trial settings (per-trial settings cost at
most 10 %: ratio ≥ 0.9), page faults per step, and with ``--profile`` where one call of each
setting spends its time. ``--flush-denormal`` times everything with denormal floats flushed
to zero, to tell what the drawn values' numerics cost from what the per-trial machinery
costs.

Run ``python benchmarks/bench_settings.py --help``; ``benchmarks/README.md`` explains the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import torch

from weightzoo.bench.harness import (
    Method,
    add_options,
    apply_defaults,
    check_positive,
    ratio_verdict,
    round_ratios,
    run_rounds,
    setup_device,
)
from weightzoo.bench.machine import machine_lines
from weightzoo.bench.training import BASE_SEED, BATCH, load_images, tensor_data, train_settings
from weightzoo.train import dropout, models, optim, trainer
from weightzoo.train.models import family_for_device
from weightzoo.train.optim import adam_kind
from weightzoo.train.seeds import trial_seeds
from weightzoo.train.trainer import EnsembleTrainer, TensorData, TrainSettings, batch_slices
from weightzoo.train.variation import EnsembleSettings, sample_job

# the project's target: per-trial settings cost at most 10 % of one shared setting's rate
# at 100 trials
TARGET_RATIO = 0.9
TARGET_TRIALS = 100


# --------------------------------------------------------------------------- what is timed
@dataclasses.dataclass(frozen=True)
class Net:
    key: str  # the --nets name
    label: str
    model: str
    arch: Mapping
    steps_option: str  # the option giving its steps per call


NETS = {
    net.key: net
    for net in (
        Net("dnn-100", "DNN 784-100-100-10", "dnn", {"widths": [100, 100]}, "steps"),
        Net("dnn-20", "DNN 784-20-20-10", "dnn", {"widths": [20, 20]}, "steps"),
        Net("smallcnn", "smallcnn c16", "smallcnn", {"channels": 16}, "smallcnn_steps"),
    )
}

# config/small-cnn-zoo.yaml's distributions
LR = {"loguniform": [5.0e-4, 5.0e-2]}
INIT_STD = {"loguniform": [1.0e-3, 0.5]}
WEIGHT_DECAY = {"loguniform": [2.0e-8, 2.0e-2]}
DROPOUT = {"uniform": [0.0, 0.7]}
PER_TRIAL_LR = {"lr": LR, "init_std": INIT_STD}
LR_WD = {**PER_TRIAL_LR, "weight_decay": WEIGHT_DECAY}
LR_WD_DROPOUT = {**LR_WD, "dropout": DROPOUT}
LR_WD_FIXED_INIT = {"lr": LR, "weight_decay": WEIGHT_DECAY}  # init std shared (0.1)
SHARED_DROPOUT = {"dropout": 0.35}  # one rate for every trial, the middle of DROPOUT

BASE = "shared"  # the base of the rows without dropout, and always timed


@dataclasses.dataclass(frozen=True)
class Setting:
    key: str  # the --settings name
    tag: str  # its number in the table and the profile's columns
    label: str
    optimizer: str
    # setting -> distribution (varies per trial) or one value for every trial; the rest
    # keep the shared values
    varied: Mapping
    base: str = BASE  # the --settings name of the setting its ratio is over

    @property
    def per_trial(self) -> bool:
        """Whether some setting varies per trial (the target is about those rows)."""
        return any(isinstance(v, Mapping) for v in self.varied.values())


SETTINGS = {
    s.key: s
    for s in (
        Setting("shared", "(1)", "shared: Adam, one lr, no decay, no dropout", "adam", {}),
        Setting("shared-dropout", "(1d)", "(1) + one dropout rate (0.35)", "adam", SHARED_DROPOUT),
        Setting("lr", "(2a)", "per-trial lr (Adam), no decay", "adam", PER_TRIAL_LR),
        Setting("lr-wd", "(2)", "per-trial lr + decay (Adam)", "adam", LR_WD),
        Setting("lr-wd-fixed-init", "(2i)", "(2), init std shared (0.1)", "adam", LR_WD_FIXED_INIT),
        Setting(
            "lr-wd-dropout",
            "(3)",
            "(2) + per-trial dropout",
            "adam",
            LR_WD_DROPOUT,
            base="shared-dropout",
        ),
        Setting("sgd", "(4)", "SGD momentum, per-trial lr + decay", "sgd_momentum", LR_WD),
        Setting("rmsprop", "(5)", "RMSprop, per-trial lr + decay", "rmsprop", LR_WD),
    )
}


@dataclasses.dataclass
class Timed:
    """One setting of one net at one ensemble size: its method and how its step runs."""

    net: Net
    setting: Setting
    method: Method
    step_kind: str  # weightzoo.train.optim.adam_kind of the trainer's optimizer


def ensemble_settings(
    setting: Setting, base: TrainSettings, arch_name: str, trials: int
) -> tuple[TrainSettings, EnsembleSettings]:
    """The job's settings with ``setting``'s distributions, and each trial's draw from them
    (as a job draws them: ``sample_job``); (1) gives every trial the shared values."""
    settings = dataclasses.replace(base, optimizer=setting.optimizer, **setting.varied)
    values = sample_job(settings, BASE_SEED, "bench", arch_name, range(trials))
    if values is None:
        return settings, EnsembleSettings.fixed(settings, trials)
    return settings, EnsembleSettings.from_trials(values)


def timed_trainer(
    net: Net, setting: Setting, base: TrainSettings, data: TensorData, trials: int
) -> Timed:
    """``train_epoch`` of ``trials`` trials of ``net`` under ``setting``: one call = one epoch."""
    family = family_for_device(net.model, "auto", data.x_train.device)
    arch_name = family.arch_name(net.arch)
    settings, ens = ensemble_settings(setting, base, arch_name, trials)
    seeds = trial_seeds(BASE_SEED, "bench", arch_name, range(trials))
    ensemble = EnsembleTrainer(family, net.arch, seeds, data, settings, trial_settings=ens)
    steps = len(batch_slices(data.x_train.shape[0], settings.batch_size))
    name = f"{net.label} · {setting.tag} {setting.label}"
    method = Method(name, trials, steps, 0.0, ensemble.train_epoch)
    return Timed(net, setting, method, adam_kind(ensemble.optimizer))


def build(args: argparse.Namespace, device: torch.device) -> tuple[list[Timed], str]:
    """Every (net, ensemble size, setting), the base setting first in each group."""
    base = dataclasses.replace(train_settings(device), batch_size=args.batch)
    largest = max(getattr(args, NETS[n].steps_option) for n in args.nets) * args.batch
    images, labels, source = load_images(args.data, largest)
    timed = []
    for key in args.nets:
        net = NETS[key]
        n_train = getattr(args, net.steps_option) * args.batch  # one epoch = that many steps
        data = tensor_data(images, labels, n_train, device)
        for trials in args.trials:
            for setting in args.settings:
                timed.append(timed_trainer(net, SETTINGS[setting], base, data, trials))
    return timed, source


# --------------------------------------------------------------------------- report
@dataclasses.dataclass
class Row:
    """One line of the table: medians over the timed rounds."""

    net: str
    setting: str
    step_kind: str
    trials: int
    steps_per_s: float
    trial_steps_per_s: float
    base: str  # the tag of the setting x_base is over
    x_base: float  # over the base of the same net and ensemble size, same round
    faults_per_step: float


def entry_of(t: Timed, timed: Sequence[Timed], setting: str) -> Timed:
    """Setting ``setting``'s entry of ``t``'s net and ensemble size."""
    return next(
        b
        for b in timed
        if b.net.key == t.net.key
        and b.method.trials == t.method.trials
        and b.setting.key == setting
    )


def base_of(t: Timed, timed: Sequence[Timed]) -> Timed:
    """The entry of ``t``'s base setting at ``t``'s net and ensemble size."""
    return entry_of(t, timed, t.setting.base)


def summarize(timed: Sequence[Timed]) -> list[Row]:
    rows = []
    for t in timed:
        m = t.method
        rates = [m.steps / s for s in m.seconds]
        rows.append(
            Row(
                t.net.label,
                f"{t.setting.tag} {t.setting.label}",
                t.step_kind,
                m.trials,
                statistics.median(rates),
                m.trials * statistics.median(rates),
                SETTINGS[t.setting.base].tag,
                statistics.median(round_ratios(m, base_of(t, timed).method)),
                statistics.median([f / m.steps for f in m.faults]),
            )
        )
    return rows


def markdown_table(rows: Sequence[Row]) -> str:
    lines = [
        "| net | setting | optimizer step | trials | steps/s | trial-steps/s | base | × base "
        "| page faults/step |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        cells = [
            r.net,
            r.setting,
            r.step_kind,
            str(r.trials),
            f"{r.steps_per_s:,.2f}",
            f"{r.trial_steps_per_s:,.0f}",
            r.base,
            f"{r.x_base:.2f}",
            f"{r.faults_per_step:,.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ratio_text(ratios: Sequence[float]) -> str:
    """``0.95× (rounds 0.80–1.00)``: the median over rounds and their range."""
    return f"{statistics.median(ratios):.2f}× (rounds {min(ratios):.2f}–{max(ratios):.2f})"


def ratio_lines(timed: Sequence[Timed]) -> list[str]:
    """Each setting over its base of the same net and size: median and the rounds' range,
    and for the per-trial settings at 100 trials the target's verdict. A row over another
    base than (1) gets a second line over (1), which counts dropout itself too."""
    lines = []
    for t in timed:
        if t.setting.key == BASE:
            continue
        base = base_of(t, timed)
        ratios = round_ratios(t.method, base.method)
        if not t.setting.per_trial:
            text = f"{ratio_text(ratios)}; one setting for every trial, no verdict"
        elif t.method.trials == TARGET_TRIALS:
            text = ratio_verdict(ratios, TARGET_RATIO)
        else:
            text = ratio_text(ratios)
        lines.append(f"- {t.method.label} / {base.setting.tag} = {text}")
        if t.setting.base != BASE:
            shared = entry_of(t, timed, BASE)
            with_dropout = ratio_text(round_ratios(t.method, shared.method))
            lines.append(
                f"  - over {shared.setting.tag} too, with what dropout itself costs: "
                f"{t.method.label} / {shared.setting.tag} = {with_dropout}, no verdict"
            )
    return lines


# --------------------------------------------------------------------------- profile
# a Python frame as the profiler names it, e.g. "weightzoo/train/dropout.py(69): _mask"
FRAME = re.compile(r"weightzoo/(?P<file>[\w/]+\.py)\((?P<line>\d+)\): (?P<func>\S+)")
PYTHON_EVENT = re.compile(r"\.py\(\d+\): |^<built-in ")
BACKWARD_NODE = "autograd::engine::evaluate_function: "
PROFILED_MODULES = (dropout, models, optim, trainer)


def qualified_names(modules=PROFILED_MODULES) -> dict[tuple[str, int], str]:
    """``(path under weightzoo/, first line) -> qualified name`` of the modules' functions
    and methods, to name the profiler's Python frames (which give the bare name)."""
    names = {}
    for module in modules:
        path = module.__name__.removeprefix("weightzoo.").replace(".", "/") + ".py"
        members = [f for _, f in inspect.getmembers(module, inspect.isfunction)]
        for _, cls in inspect.getmembers(module, inspect.isclass):
            members += [inspect.unwrap(f) for f in vars(cls).values() if callable(f)]
        for f in members:
            code = getattr(f, "__code__", None)
            if code is not None and f.__module__ == module.__name__:
                names[(path, code.co_firstlineno)] = f.__qualname__
    return names


def where(event, names: Mapping[tuple[str, int], str]) -> str:
    """Where an event's self time goes: ``backward: <autograd node>`` for the backward pass,
    else ``<file> <function>: <op>`` of the innermost weightzoo function it runs under
    (``Python`` for the interpreter's own time)."""
    op = "Python" if PYTHON_EVENT.search(event.name) else event.name
    node = event
    while node is not None:
        if node.name.startswith(BACKWARD_NODE):
            return "backward: " + node.name.removeprefix(BACKWARD_NODE)
        frame = FRAME.search(node.name)
        if frame:
            key = (frame["file"], int(frame["line"]))
            func = names.get(key, frame["func"])
            return f"{frame['file'].split('/')[-1]} {func}: {op}"
        node = node.cpu_parent
    return f"outside weightzoo: {op}"


def profile_call(run: Callable[[], object], names) -> dict[str, float]:
    """Self CPU time (µs) of one ``run()`` per :func:`where` place, under torch's profiler
    with Python frames recorded."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        run()
    totals: dict[str, float] = defaultdict(float)
    for event in prof.events():
        totals[where(event, names)] += event.self_cpu_time_total
    return dict(totals)


def profile_ms_per_step(t: Timed, calls: int, names) -> dict[str, float]:
    """ms per step of each place, the median over ``calls`` profiled calls (a place absent
    from a call counts 0 there), so that one burst of a neighbour's load weighs little."""
    profiles = [profile_call(t.method.run, names) for _ in range(calls)]
    places = {p for totals in profiles for p in totals}
    return {
        p: statistics.median(totals.get(p, 0.0) for totals in profiles) / 1e3 / t.method.steps
        for p in places
    }


def profile_tables(timed: Sequence[Timed], calls: int, min_share: float) -> list[str]:
    """Per net, at its largest ensemble size: ms per step of each place in a call of every
    setting, a column per setting; places under ``min_share`` of every column's total go
    to one row."""
    names = qualified_names()
    lines = []
    for key in dict.fromkeys(t.net.key for t in timed):
        mine = [t for t in timed if t.net.key == key]
        largest = max(t.method.trials for t in mine)
        per_step = {
            t.setting.tag: profile_ms_per_step(t, calls, names)
            for t in mine
            if t.method.trials == largest
        }
        lines += profile_table(NETS[key], largest, per_step, calls, min_share)
    return lines


def profile_table(
    net: Net,
    trials: int,
    per_step: Mapping[str, Mapping[str, float]],
    calls: int,
    min_share: float,
) -> list[str]:
    """The Markdown table of :func:`profile_tables` for one net."""
    tags = list(per_step)
    totals = {tag: sum(per_step[tag].values()) for tag in tags}
    places = {p for tag in tags for p in per_step[tag]}
    shown = [
        p
        for p in places
        if any(per_step[tag].get(p, 0.0) >= min_share * totals[tag] for tag in tags)
    ]
    shown.sort(key=lambda p: -max(per_step[tag].get(p, 0.0) for tag in tags))
    rest = {tag: totals[tag] - sum(per_step[tag].get(p, 0.0) for p in shown) for tag in tags}
    lines = [
        "",
        f"Profile of {net.label} ×{trials}: ms of self CPU time per step, median of "
        f"{calls} call(s) of each setting under torch.profiler (Python frames recorded); "
        f"places under {100 * min_share:g} % of every column in 'everything else'",
        "",
        "| where | " + " | ".join(tags) + " |",
        "|---|" + "--:|" * len(tags),
    ]
    for place, values in [
        *((p, {tag: per_step[tag].get(p, 0.0) for tag in tags}) for p in shown),
        ("everything else", rest),
        ("**total**", totals),
    ]:
        lines.append(f"| {place} | " + " | ".join(f"{values[tag]:.2f}" for tag in tags) + " |")
    return lines


# --------------------------------------------------------------------------- main
FULL_DEFAULTS = {"steps": 20, "smallcnn_steps": 4, "repeats": 3}
QUICK_DEFAULTS = {"steps": 2, "smallcnn_steps": 1, "repeats": 1}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", nargs="+", choices=list(NETS), default=list(NETS))
    p.add_argument(
        "--settings",
        nargs="+",
        choices=list(SETTINGS),
        default=list(SETTINGS),
        help=f"the settings to time ({BASE} and each one's base are always timed too)",
    )
    p.add_argument("--trials", type=int, nargs="+", default=[10, 100], help="ensemble sizes")
    p.add_argument(
        "--steps",
        type=int,
        help="steps per timed call of the DNNs (default {steps}; --quick {quick})".format(
            steps=FULL_DEFAULTS["steps"], quick=QUICK_DEFAULTS["steps"]
        ),
    )
    p.add_argument(
        "--smallcnn-steps",
        type=int,
        help="steps per timed call of the small CNN (default {steps}; --quick {quick})".format(
            steps=FULL_DEFAULTS["smallcnn_steps"], quick=QUICK_DEFAULTS["smallcnn_steps"]
        ),
    )
    p.add_argument("--batch", type=int, default=BATCH, help=f"batch size (default {BATCH})")
    add_options(p, ["--repeats", "--device", "--threads", "--data"], FULL_DEFAULTS, {})
    p.set_defaults(data="synthetic")
    p.add_argument(
        "--profile",
        action="store_true",
        help="after the timed rounds, profile one call of every setting of each net at its "
        "largest --trials and print where the time goes, in ms per step",
    )
    p.add_argument(
        "--profile-calls",
        type=int,
        default=3,
        help="--profile's profiled calls per setting; the table shows medians (default 3)",
    )
    p.add_argument(
        "--profile-min-share",
        type=float,
        default=0.02,
        help="--profile's places under this share of every setting's total are summed "
        "into one row (default 0.02)",
    )
    p.add_argument(
        "--flush-denormal",
        action="store_true",
        help="time with denormal floats flushed to zero (torch.set_flush_denormal(True)), "
        "to see what the drawn values' tiny numbers cost apart from the per-trial machinery",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: defaults become {steps} DNN steps, {smallcnn_steps} small-CNN "
        "step, {repeats} timed round (options given explicitly still win); the numbers "
        "are not reliable".format(**QUICK_DEFAULTS),
    )
    args = p.parse_args(argv)
    apply_defaults(args, FULL_DEFAULTS, QUICK_DEFAULTS)
    check_positive(
        p,
        args,
        ["--steps", "--smallcnn-steps", "--repeats", "--trials", "--batch", "--profile-calls"],
    )
    args.settings = with_bases(args.settings)
    return args


def with_bases(settings: Sequence[str]) -> list[str]:
    """``settings`` once each, after (1) and the bases they are measured against."""
    bases = dict.fromkeys([BASE, *(SETTINGS[s].base for s in settings)])
    return [*bases, *(s for s in dict.fromkeys(settings) if s not in bases)]


def flush_denormal_line(requested: bool) -> str:
    """Whether denormals were flushed to zero during the timing (the machine lines)."""
    if not requested:
        return "- denormal floats: kept (IEEE; --flush-denormal flushes them to zero)"
    if torch.set_flush_denormal(True):
        return "- denormal floats: flushed to zero (--flush-denormal)"
    return "- denormal floats: kept, --flush-denormal is not supported on this CPU"


def main(argv=None) -> None:
    args = parse_args(argv)
    denormal_line = flush_denormal_line(args.flush_denormal)
    try:
        report(args, denormal_line)
    finally:
        torch.set_flush_denormal(False)  # torch's default, for whatever runs next


def report(args: argparse.Namespace, denormal_line: str) -> None:
    """Build, time and print the table, the ratio lines, the machine and (``--profile``)
    where the time goes."""
    device = setup_device(args)
    timed, source = build(args, device)
    run_rounds([t.method for t in timed], args.repeats, device)
    print(markdown_table(summarize(timed)))
    print()
    steps = ", ".join(f"{NETS[n].label} {getattr(args, NETS[n].steps_option)}" for n in args.nets)
    lines = [
        f"- medians over {args.repeats} timed round(s) after a warm-up round; steps per call "
        f"(one epoch): {steps}; batch {args.batch}; × base = over the row's base "
        "setting of the same net and ensemble size in the same round: (1d) for (3), (1) for "
        "the others",
        "- per-trial values drawn from config/small-cnn-zoo.yaml's distributions "
        "(lr, init std, weight decay log-uniform, dropout uniform 0–0.7); shared: lr 1e-3, "
        "no decay, init std 0.1, dropout 0 ((1d): 0.35)",
        f"- target: per-trial settings cost ≤ {100 * (1 - TARGET_RATIO):.0f} % at "
        f"{TARGET_TRIALS} trials (rate ≥ {TARGET_RATIO:g}× base; the per-trial rows only)",
        *ratio_lines(timed),
        *machine_lines(device, source),
        denormal_line,
    ]
    if args.quick:
        lines.append("- --quick: smoke test only, the numbers are not representative")
    for line in lines:
        print(line)
    if args.profile:
        for line in profile_tables(timed, args.profile_calls, args.profile_min_share):
            print(line)


if __name__ == "__main__":
    main()
