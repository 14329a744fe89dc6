"""Configuration: defaults, validation with a clear error, and the plan of training jobs.

The JSON Schema lives in ``workflow/schemas/config.schema.yaml``; this module adds the
defaults, the checks a schema cannot express, and turns a config into jobs.

Light on purpose: Snakemake runs this while it builds the DAG, so nothing here imports
torch, scipy, scikit-learn, pandas or numpy (tests/test_config.py checks it). Architectures
are checked against their images by shape alone (weightzoo.train.shapes). What needs torch
runs in the training job itself, before it trains (weightzoo.stages.train: ``job_device``,
``size_job``): which device ``auto`` finds (and float64 there), and whether one trial fits
the device's memory.

Defaults are written once: ``training`` comes from :class:`weightzoo.train.settings.
TrainSettings`, ``claims`` from :class:`weightzoo.analysis.claims.settings.ClaimSettings`,
``groups.relative`` from :data:`weightzoo.analysis.group_rules.DEFAULT_RELATIVE`, the rest
from :data:`DEFAULTS` below; ``config/config.yaml`` documents the same values (a test checks).
"""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from .analysis.claims.settings import config_defaults as claims_defaults
from .analysis.group_rules import DEFAULT_RELATIVE
from .analysis.reconstruct.settings import ReconstructSettings
from .analysis.reconstruct.settings import config_defaults as reconstruct_defaults
from .data.catalog import IMAGE_SHAPES, NUM_CLASSES
from .train.hparams import VARIABLE
from .train.seeds import trial_seeds
from .train.settings import TrainSettings, dtype_device_error, training_defaults
from .train.shapes import check_strategy, get_shapes

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"

DEFAULTS: dict = {
    "run_dir": None,  # None: the directory snakemake runs in (docs/outputs.md, "Run directories")
    "seed": 0,
    "data": {"data_dir": "data", "download": True, "verify_checksums": True},
    # the paper's Table 1 (init_std is not given in the paper: docs/training.md): TrainSettings
    "training": training_defaults(),
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
    # WeightWatcher's spectral columns in the features table (docs/features.md)
    "features": {"spectral": True},
    "claims": claims_defaults(),  # weightzoo.analysis.claims.settings.ClaimSettings
    # weightzoo.analysis.reconstruct.settings.ReconstructSettings (docs/reconstruct.md)
    "reconstruct": reconstruct_defaults(),
}


# an experiment with `source:` imports its zoo (docs/import.md): it names none of these
IMPORT_SOURCE = "source"
TRAINING_KEYS = ("model", "dataset", "trials", "architectures", "training")
IMPORTED_MODEL = "generic"  # the family of imported zoos (weightzoo.train.shapes)
IMPORTED_DATASET = "unknown"

# the ViT's encoder runs without dropout (weightzoo.train.models.ViT)
MODELS_WITHOUT_DROPOUT = ("vit",)


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
    _check_reconstruct(full)
    for name, exp in full["experiments"].items():
        if IMPORT_SOURCE in exp:
            full["experiments"][name] = _imported_experiment(name, exp, group_settings(full, name))
            continue
        _check_experiment(name, exp, group_settings(full, name))
        _check_checkpoints(full, name)
        _check_device(full, name)
    return full


def _check_reconstruct(config: Mapping) -> None:
    """What the schema cannot say: claim_ratio among the ratios, known experiments."""
    block = config["reconstruct"]
    try:
        ReconstructSettings.from_config(block)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    unknown = [e for e in block["experiments"] if e not in config["experiments"]]
    if unknown:
        raise ConfigError(
            f"reconstruct.experiments: {unknown} not among the experiments "
            f"{list(config['experiments'])}"
        )
    imported = [e for e in block["experiments"] if is_imported(config["experiments"][e])]
    if imported:
        raise ConfigError(
            f"reconstruct.experiments: {imported} are imported (source:); a rebuilt network "
            "needs the model's forward pass, so only trained experiments are reconstructed"
        )


def _imported_experiment(name: str, exp: Mapping, groups: Mapping) -> dict:
    """An experiment whose zoo is imported (``source:``, docs/import.md): no training keys,
    bands while its groups.method is bands; returned with ``model: generic`` and its
    ``dataset`` (the source's, else ``unknown``) so that the analyses treat it like any
    experiment."""
    trained = [k for k in TRAINING_KEYS if k in exp]
    if trained:
        raise ConfigError(
            f"experiments.{name}: {', '.join(trained)} beside source: an imported experiment "
            "is not trained; remove them (the source gives the weights and accuracies; its "
            "dataset goes in source.dataset) or remove source to train it"
        )
    if groups["method"] == "bands" and "bands" not in exp:
        raise ConfigError(
            f"experiments.{name}.bands: missing; groups.method is 'bands', which needs each "
            "experiment's bands (or set groups.method: relative, globally or for this experiment)"
        )
    dataset = exp[IMPORT_SOURCE].get("dataset", IMPORTED_DATASET)
    return {**exp, "model": IMPORTED_MODEL, "dataset": dataset}


def is_imported(exp: Mapping) -> bool:
    """Whether the experiment's zoo is imported (``source:``) rather than trained."""
    return IMPORT_SOURCE in exp


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
    """What can be told without torch: an explicit ``training.device`` that cannot run the
    experiment's dtype (float64 on MPS), and a ``training.strategy`` for a model that has
    one way only. Which device ``auto`` finds, and whether one trial fits its memory
    (an explicit execution.device_memory_mb, MPS's per-array limit), the job checks before
    it trains (weightzoo.stages.train: job_device, size_job)."""
    try:
        settings = experiment_settings(config, experiment)
    except ValueError as e:
        raise ConfigError(f"experiments.{experiment}: {e}") from None
    if settings.device != "auto":
        error = dtype_device_error(settings.dtype, settings.device, settings.device.split(":")[0])
        if error:
            raise ConfigError(f"experiments.{experiment}: {error}")
    try:
        check_strategy(config["experiments"][experiment]["model"], settings.strategy)
    except ValueError as e:
        raise ConfigError(f"experiments.{experiment}: {e}") from None
    model = config["experiments"][experiment]["model"]
    if model in MODELS_WITHOUT_DROPOUT and settings.dropout != 0:
        raise ConfigError(
            f"experiments.{experiment}: training.dropout: the {model} has no dropout "
            f"(got {settings.dropout!r}); set training.dropout: 0 for this experiment"
        )


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
    family = get_shapes(exp["model"])
    for i, arch in enumerate(exp["architectures"]):
        try:  # shapes that do not fit the data (ViT patch, nhead) fail here, not in a job
            family.param_shapes(arch, IMAGE_SHAPES[exp["dataset"]], NUM_CLASSES)
        except ValueError as e:
            raise ConfigError(f"experiments.{name}.architectures.{i}: {e}") from None
    names = [family.arch_name(a) for a in exp["architectures"]]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"experiments.{name}.architectures: {duplicated} listed twice")


def canonical(value):
    """``value`` with every mapping's keys sorted, recursively (lists keep their order).

    Rule params are compared by their ``repr``, so a config whose keys were merely
    re-ordered (as a YAML formatter that sorts keys writes it) would otherwise rerun every
    job whose params hold one of its mappings; in canonical form only a changed value does.
    Mappings built by code (a job, its settings) already have one order and keep it."""
    if isinstance(value, Mapping):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, tuple):
        return tuple(canonical(v) for v in value)
    return value


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
    arch: dict  # keys sorted (canonical): params compare by repr
    start: int
    stop: int

    @property
    def chunk(self) -> str:
        return f"t{self.start:05d}-{self.stop:05d}"

    @property
    def trial_ids(self) -> list[int]:
        return list(range(self.start, self.stop))

    def seeds(self, base_seed: int) -> list[int]:
        return trial_seeds(base_seed, self.experiment, self.arch_name, self.trial_ids)


def gpus_per_training_job(config: Mapping) -> int:
    """Units of Snakemake's ``gpu`` resource one training job takes.

    ``execution.gpu: auto``: 1 when ``training.device`` resolves to a GPU (CUDA or Apple
    MPS) on the machine that plans the jobs, else 0. Then ``--resources gpu=1`` lets one
    training job at a time use the GPU while CPU-only rules fill the other cores. On a
    cluster the profile sets the resource itself (slurm/config.yaml). ``training.device:
    auto`` is resolved by :func:`planning_device_type`, in a child process."""
    gpu = config["execution"]["gpu"]
    if gpu != "auto":
        return gpu
    name = config["training"]["device"]
    device_type = planning_device_type() if name == "auto" else name.split(":")[0]
    return 0 if device_type == "cpu" else 1


@functools.cache
def planning_device_type() -> str:
    """The device type ``training.device: auto`` finds on this machine (``cpu``, ``cuda``,
    ``mps``), asked of :func:`weightzoo.train.device.resolve_device` in a child process:
    torch stays out of the process that validates configs (Snakemake's, all run long)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from weightzoo.train.device import resolve_device; "
        "print(resolve_device('auto').type)"
    )
    src = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code, src], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def experiment_settings(config: Mapping, experiment: str) -> TrainSettings:
    """Global ``training`` settings with the experiment's own overrides on top."""
    own = config["experiments"][experiment].get("training", {})
    # an experiment's distribution replaces the global value as a whole (merging two
    # distributions' keys would make a third that neither config wrote)
    merged = {**_merge(config["training"], own), **{k: own[k] for k in VARIABLE if k in own}}
    return TrainSettings(**merged)


def group_settings(config: Mapping, experiment: str) -> dict:
    """Global ``groups`` settings with the experiment's own ``groups`` on top; ``relative``
    (a config's own replaces the defaults as a whole) filled from
    :data:`weightzoo.analysis.group_rules.DEFAULT_RELATIVE`."""
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
        if is_imported(exp):
            continue  # imported, not trained: rule import_zoo writes its zoo
        family = get_shapes(exp["model"])
        for arch, n_trials in zip(exp["architectures"], trials_per_architecture(exp), strict=True):
            for start in range(0, n_trials, per_job):
                jobs.append(
                    TrainJob(
                        name,
                        exp["model"],
                        exp["dataset"],
                        family.arch_name(arch),
                        canonical(arch),
                        start,
                        min(start + per_job, n_trials),
                    )
                )
    return jobs
