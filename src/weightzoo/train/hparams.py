"""Per-trial training settings: a spec of fixed values and distributions, and each trial's draw.

A zoo whose architecture is fixed must vary the *training* to ask what in the weights
separates good networks from bad ones (the Small CNN Zoo design, Unterthiner et al. 2020).
Each trial's values follow from its identity alone, like its seed (:mod:`.seeds`), one
hashed stream per setting: adding trials or reordering settings changes no existing value.
Standard library only, so that config validation can use it while Snakemake plans. Not
yet read by the config, the schema or the trainer: the building block comes first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from numbers import Real

from weightzoo.train.seeds import derive_seed

OPTIMIZERS = ("adam", "sgd_momentum", "rmsprop")
ACTIVATIONS = ("relu", "tanh")
INITS = ("normal", "truncated_normal", "glorot_uniform", "he_uniform")
DISTRIBUTIONS = ("loguniform", "uniform", "choice")


class HparamError(ValueError):
    """A bad per-trial setting; the message names the key path, the value and the fix."""


# per setting that may vary: the distributions it takes, and its valid values, either
# (low, high, low_open, high_open) or the names it knows
VARIABLE = {
    "lr": (("loguniform", "choice"), (0, math.inf, True, True)),
    "init_std": (("loguniform", "choice"), (0, math.inf, True, True)),
    "weight_decay": (("loguniform", "choice"), (0, math.inf, False, True)),
    "dropout": (("uniform", "choice"), (0, 1, False, True)),
    "train_fraction": (("choice",), (0, 1, True, False)),
    "optimizer": (("choice",), OPTIMIZERS),
    "activation": (("choice",), ACTIVATIONS),
    "init": (("choice",), INITS),
}

# the settings drawn over decades (log-uniform): analyses see them by their log10; of
# those, the ones whose valid range includes 0 (weight decay's zero_share) can be exactly 0
LOG_SCALE = tuple(name for name, (kinds, _) in VARIABLE.items() if "loguniform" in kinds)
LOG_SCALE_WITH_ZEROS = tuple(name for name in LOG_SCALE if not VARIABLE[name][1][2])


@dataclass(frozen=True)
class Fixed:
    """One value shared by every trial (what a config gives today)."""

    value: object


@dataclass(frozen=True)
class LogUniform:
    """Uniform in log: rates spread over decades; ``zero_share`` of trials get exactly 0."""

    low: float
    high: float
    zero_share: float = 0.0


@dataclass(frozen=True)
class Uniform:
    """Uniform between ``low`` and ``high`` (dropout rate)."""

    low: float
    high: float


@dataclass(frozen=True)
class Choice:
    """One of ``values``, each equally likely (optimizer, activation, init, train fraction)."""

    values: tuple


@dataclass(frozen=True)
class Spec:
    """The parsed settings, in the config's order: name -> Fixed | LogUniform | Uniform | Choice."""

    settings: tuple[tuple[str, Fixed | LogUniform | Uniform | Choice], ...]

    def varied(self) -> tuple[str, ...]:
        """The names whose value differs between trials (what a zoo file stores per trial)."""
        return tuple(n for n, s in self.settings if not isinstance(s, Fixed))


def parse_spec(spec: Mapping, where: str = "training") -> Spec:
    """Check a config's settings once, at config time, so a typo fails before any job runs;
    every error names its key path (``training.lr``) so the user finds it in the YAML."""
    if not isinstance(spec, Mapping):
        raise HparamError(f"{where}: expected a mapping of setting -> value, got {spec!r}")
    return Spec(tuple((n, _parse_setting(f"{where}.{n}", n, v)) for n, v in spec.items()))


def _parse_setting(path: str, name: str, value):
    """One setting: a plain value stays fixed (checked if it is a variable one); a mapping
    is a distribution, allowed only for the settings a trial's training can vary."""
    if not isinstance(value, Mapping):
        if name in VARIABLE:
            _check_value(path, name, value)
        return Fixed(value)
    if name not in VARIABLE:
        may = ", ".join(VARIABLE)
        raise HparamError(f"{path}: {name} cannot vary per trial; give one value (may vary: {may})")
    kinds = [k for k in value if k != "zero_share"]
    if len(kinds) != 1 or kinds[0] not in DISTRIBUTIONS:
        known = ", ".join(DISTRIBUTIONS)
        raise HparamError(f"{path}: unknown distribution {dict(value)!r}; give one of {known}")
    kind, allowed = kinds[0], VARIABLE[name][0]
    if kind not in allowed:
        raise HparamError(f"{path}: {name} cannot be {kind}; use {' or '.join(allowed)}")
    zero_share = value.get("zero_share", 0.0)
    if "zero_share" in value and (name, kind) != ("weight_decay", "loguniform"):
        raise HparamError(f"{path}.zero_share: only weight_decay's loguniform takes it; drop it")
    if isinstance(zero_share, bool) or not isinstance(zero_share, Real) or not 0 <= zero_share <= 1:
        raise HparamError(f"{path}.zero_share: {zero_share!r} is not a share; give [0, 1]")
    args = _parse_args(f"{path}.{kind}", name, kind, value[kind])
    if kind != "loguniform":
        return Choice(args) if kind == "choice" else Uniform(*map(float, args))
    if args[0] <= 0:
        raise HparamError(f"{path}.loguniform: low {args[0]!r} must be > 0 (its log is drawn)")
    return LogUniform(float(args[0]), float(args[1]), float(zero_share))


def _check_value(path: str, name: str, v) -> None:
    """Every value of a variable setting (fixed, a bound, a candidate) must be valid itself:
    a bad bound would otherwise surface only in the trials that happen to draw near it."""
    valid = VARIABLE[name][1]
    if isinstance(valid[0], str):
        problem = None if v in valid else f"one of {', '.join(valid)}"
    elif isinstance(v, bool) or not isinstance(v, Real):
        problem = "a number"
    else:
        lo, hi, lo_open, hi_open = valid
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        problem = None if ok else f"a number in {'(['[not lo_open]}{lo}, {hi}{')]'[not hi_open]}"
    if problem:
        raise HparamError(f"{path}: {v!r} is not a valid {name}; give {problem}")


def _parse_args(path: str, name: str, kind: str, args) -> tuple:
    """A distribution's list: [low, high] with low < high, or a choice's non-empty list."""
    pair = kind != "choice"
    if not isinstance(args, list | tuple) or not args or (pair and len(args) != 2):
        want = "[low, high], two numbers" if pair else "a non-empty list of values"
        raise HparamError(f"{path}: {args!r} is not valid; give {want}")
    for i, v in enumerate(args):
        _check_value(f"{path}[{i}]", name, v)
    if pair and args[0] >= args[1]:
        raise HparamError(f"{path}: low {args[0]!r} >= high {args[1]!r}; give low < high")
    return tuple(args)


def setting_id(trial_id: int, replicates: int = 1) -> int:
    """The sampled setting a trial trains: trials k*j .. k*j+k-1 share setting j, so the
    seed-only spread of one setting is measured by its k replicates."""
    for key, v, least in (("replicates", replicates, 1), ("trial_id", trial_id, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise HparamError(f"{key}: {v!r} is not valid; give an integer >= {least}")
    return trial_id // replicates


def _unit(seed: int) -> float:
    """A 63-bit seed as a uniform in (0, 1); the float may round to 1.0 for the top 2**-54."""
    return (seed + 0.5) / 2**63


def _draw(setting, stream) -> object:
    """One setting's value from its own stream(s); clamped against float rounding at the ends."""
    if isinstance(setting, Fixed):
        return setting.value
    u = _unit(stream())
    if isinstance(setting, Choice):
        return setting.values[min(int(u * len(setting.values)), len(setting.values) - 1)]
    if isinstance(setting, Uniform):
        return min(setting.low + u * (setting.high - setting.low), setting.high)
    if setting.zero_share and _unit(stream("zero")) < setting.zero_share:
        return 0.0
    lo, hi = math.log(setting.low), math.log(setting.high)
    return min(max(math.exp(lo + u * (hi - lo)), setting.low), setting.high)


def sample_trial(
    spec: Spec | Mapping,
    base_seed: int,
    experiment: str,
    arch_name: str,
    trial_id: int,
    replicates: int = 1,
) -> dict:
    """The settings of one trial, from its identity alone: each setting hashes its own
    stream (base seed, experiment, architecture, setting id, name), so neither the number
    of trials nor the order or presence of other settings changes a value."""
    parsed = spec if isinstance(spec, Spec) else parse_spec(spec)
    sid = setting_id(trial_id, replicates)
    ident = (base_seed, experiment, arch_name, sid, "hparams")
    return {n: _draw(s, partial(derive_seed, *ident, n)) for n, s in parsed.settings}
