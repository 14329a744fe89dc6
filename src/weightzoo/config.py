"""Configuration: defaults, validation with a clear error, and the plan of training jobs.

The JSON Schema lives in ``workflow/schemas/config.schema.yaml``; this module adds the
defaults, the checks a schema cannot express, and turns a config into jobs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from .analysis.claims import config_defaults as claims_defaults
from .data.datasets import IMAGE_SHAPES, NUM_CLASSES
from .train.device import DeviceError, device_memory_budget, max_array_bytes, resolve_device
from .train.memory import JobTooLarge, check_fits, step_memory
from .train.models import family_for_device, get_family
from .train.trainer import TrainSettings, trial_seed

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"

DEFAULTS: dict = {
    "run_dir": None,  # None: the directory snakemake runs in (README, "Runs")
    "seed": 0,
    "data": {"data_dir": "data", "download": True, "verify_checksums": True},
    # the paper's Table 1; init_std is not given in the paper (see README)
    "training": {
        "epochs": 20,
        "batch_size": 100,
        "lr": 0.001,
        "init_std": 1.0,
        "bias_init": "normal",
        "dtype": "float32",
        "device": "auto",
        "eval_chunk_mb": 64,
        "allow_tf32": False,
        "checkpoint_epochs": [],
    },
    "execution": {
        "trials_per_job": 100,
        "threads": 2,
        "gpu": "auto",
        "mem_mb": 4000,
        "runtime": 120,
        "device_memory_mb": "auto",
    },
    # groups.relative has no default here: group_settings() fills it, so a config's own
    # relative bands replace the defaults as a whole instead of merging with them
    "groups": {"accuracy": "test", "chance_tolerance": 2.0, "method": "bands"},
    "figures": {
        "tsne_descriptor": "quantiles",
        "n_quantiles": 64,
        "kde_max_points": 20000,
        "seed": 0,
    },
    # WeightWatcher's spectral columns in the features table (issue 10 §4; docs/features.md)
    "features": {"spectral": True},
    "claims": claims_defaults(),  # weightzoo.analysis.claims.ClaimSettings
}


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what to do."""


def _merge(defaults: Mapping, overrides: Mapping) -> dict:
    out = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def validate_config(config: Mapping, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Check ``config`` and return it with defaults filled in; raise :class:`ConfigError`."""
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError(
            "invalid config (fix these keys, see config/config.yaml for the "
            "documented keys):\n" + "\n".join(lines)
        )
    full = _merge(DEFAULTS, config)
    for name, exp in full["experiments"].items():
        _check_experiment(name, exp, group_settings(full, name))
        _check_checkpoints(full, name)
        _check_device(full, name)
    return full


def _check_checkpoints(config: Mapping, experiment: str) -> None:
    """training.checkpoint_epochs within 1..training.epochs (after the experiment's
    overrides: an experiment may train fewer epochs than the global list names)."""
    training = _merge(config["training"], config["experiments"][experiment].get("training", {}))
    epochs = training["epochs"]
    outside = [k for k in training["checkpoint_epochs"] if not 1 <= k <= epochs]
    if outside:
        raise ConfigError(
            f"experiments.{experiment}: training.checkpoint_epochs {outside} not in "
            f"1..{epochs} (training.epochs); list epochs after which to keep the weights"
        )


def _check_device(config: Mapping, experiment: str) -> None:
    """The experiment's dtype runs on its device here, and one trial of each of its
    architectures fits an explicit execution.device_memory_mb and MPS's per-array limit.
    ``auto`` budgets are checked by the job itself (still before training): asking the
    GPU its size here would hold a CUDA context in the Snakemake process all run long."""
    settings = experiment_settings(config, experiment)
    try:
        device = resolve_device(settings.device, settings.dtype)
    except DeviceError as e:
        raise ConfigError(f"experiments.{experiment}: {e}") from None
    setting = config["execution"]["device_memory_mb"]
    budget = None if setting == "auto" else device_memory_budget(device, setting)
    array_limit = max_array_bytes(device)
    if budget is None and array_limit is None:
        return  # the CPU without an explicit budget: nothing to size (and nothing to pay)
    exp = config["experiments"][experiment]
    try:
        family = family_for_device(exp["model"], settings.strategy, device)
    except ValueError as e:
        raise ConfigError(f"experiments.{experiment}: {e}") from None
    for arch in exp["architectures"]:
        memory = step_memory(
            family,
            arch,
            IMAGE_SHAPES[exp["dataset"]],
            NUM_CLASSES,
            settings.batch_size,
            settings.torch_dtype,
        )
        try:
            check_fits(experiment, family.arch_name(arch), memory, budget, array_limit)
        except JobTooLarge as e:
            raise ConfigError(str(e)) from None


def _check_experiment(name: str, exp: Mapping, groups: Mapping) -> None:
    if groups["method"] == "bands" and "bands" not in exp:
        raise ConfigError(
            f"experiments.{name}.bands: missing; groups.method is 'bands', which needs each "
            "experiment's bands (or set groups.method: relative, globally or for this experiment)"
        )
    for group, (lo, hi) in exp.get("bands", {}).items():
        if lo > hi:
            raise ConfigError(
                f"experiments.{name}.bands.{group}: min {lo} > max {hi}; "
                "write bands as [min, max] in percent"
            )
    if exp["trials"] < len(exp["architectures"]):
        raise ConfigError(
            f"experiments.{name}.trials: {exp['trials']} trials cannot cover "
            f"{len(exp['architectures'])} architectures; raise trials"
        )
    family = get_family(exp["model"])
    for i, arch in enumerate(exp["architectures"]):
        try:  # shapes that do not fit the data (ViT patch, nhead) fail here, not in a job
            family.param_shapes(arch, IMAGE_SHAPES[exp["dataset"]], NUM_CLASSES)
        except ValueError as e:
            raise ConfigError(f"experiments.{name}.architectures.{i}: {e}") from None
    names = [family.arch_name(a) for a in exp["architectures"]]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"experiments.{name}.architectures: {duplicated} listed twice")


def resolve_path(path: str | Path | None, root: str | Path) -> Path | None:
    """A config path (``run_dir``, ``data.data_dir``) as an absolute path: relative ones are
    relative to ``root``, the repository, never to the run directory a job runs in."""
    if path is None:
        return None
    return Path(root, path).resolve()


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict:
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    return validate_config(raw, schema_path)


# --------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class TrainJob:
    """One training job: a contiguous range of trial ids of one architecture."""

    experiment: str
    model: str
    dataset: str
    arch_name: str
    arch: dict
    start: int
    stop: int

    @property
    def chunk(self) -> str:
        return f"t{self.start:05d}-{self.stop:05d}"

    @property
    def trial_ids(self) -> list[int]:
        return list(range(self.start, self.stop))

    def seeds(self, base_seed: int) -> list[int]:
        return [trial_seed(base_seed, self.experiment, self.arch_name, i) for i in self.trial_ids]


def gpus_per_training_job(config: Mapping) -> int:
    """Units of Snakemake's ``gpu`` resource one training job takes.

    ``execution.gpu: auto``: 1 when ``training.device`` resolves to a GPU (CUDA or Apple
    MPS) on the machine that plans the jobs, else 0. Then ``--resources gpu=1`` lets one
    training job at a time use the GPU while CPU-only rules fill the other cores. On a
    cluster the profile sets the resource itself (slurm/config.yaml)."""
    gpu = config["execution"]["gpu"]
    if gpu != "auto":
        return gpu
    return 0 if resolve_device(config["training"]["device"]).type == "cpu" else 1


def experiment_settings(config: Mapping, experiment: str) -> TrainSettings:
    """Global ``training`` settings with the experiment's own overrides on top."""
    exp = config["experiments"][experiment]
    return TrainSettings(**_merge(config["training"], exp.get("training", {})))


def group_settings(config: Mapping, experiment: str) -> dict:
    """Global ``groups`` settings with the experiment's own ``groups`` on top; ``relative``
    (a config's own replaces the defaults as a whole) filled from
    :data:`weightzoo.analysis.groups.DEFAULT_RELATIVE`."""
    from .analysis.groups import DEFAULT_RELATIVE

    own = config["experiments"][experiment].get("groups", {})
    merged = {**config["groups"], **own}
    relative = merged.get("relative") or {g: list(e) for g, e in DEFAULT_RELATIVE.items()}
    return {**merged, "relative": {g: list(e) for g, e in relative.items()}}


def trials_per_architecture(exp: Mapping) -> list[int]:
    """``trials`` spread evenly over the architectures (the first ones take the remainder)."""
    n, k = exp["trials"], len(exp["architectures"])
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def plan_jobs(config: Mapping) -> list[TrainJob]:
    """All training jobs. Chunks are aligned to multiples of ``trials_per_job`` so raising
    ``trials`` keeps every full chunk (and its file) as it was: only new trials train."""
    per_job = config["execution"]["trials_per_job"]
    jobs = []
    for name, exp in config["experiments"].items():
        family = get_family(exp["model"])
        for arch, n_trials in zip(exp["architectures"], trials_per_architecture(exp), strict=True):
            for start in range(0, n_trials, per_job):
                jobs.append(
                    TrainJob(
                        name,
                        exp["model"],
                        exp["dataset"],
                        family.arch_name(arch),
                        dict(arch),
                        start,
                        min(start + per_job, n_trials),
                    )
                )
    return jobs
