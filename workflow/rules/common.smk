# Shared set-up: validated config, the job plan, and the lists of targets.
import sys
from pathlib import Path

# Rules run the repository's own package (not an installed copy), so the code that runs is
# the code listed as input below: editing it reruns exactly the jobs that use it.
SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))

from dataclasses import asdict  # noqa: E402

from weightzoo.codedeps import closure  # noqa: E402
from weightzoo.config import (  # noqa: E402
    ConfigError,
    experiment_settings,
    gpus_per_training_job,
    group_settings,
    plan_jobs,
    resolve_path,
    validate_config,
)
from weightzoo.figures.registry import figures_for  # noqa: E402

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
try:
    CONFIG = validate_config(config, SCHEMA)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

# relative to the repository, like every path in a config
RUN_DIR = resolve_path(CONFIG["run_dir"], workflow.basedir)
JOBS = {(j.experiment, j.arch_name, j.chunk): j for j in plan_jobs(CONFIG)}
EXPERIMENTS = CONFIG["experiments"]
DATASETS = sorted({e["dataset"] for e in EXPERIMENTS.values()})
MODELS = sorted({e["model"] for e in EXPERIMENTS.values()})
FIGURES = figures_for(MODELS)  # {figure name: Figure(module, model)}

TABLE2 = ["results/tables/table2.csv", "results/tables/table2.md"]
FEATURE_FILES = [f"results/features/{e}.parquet" for e in EXPERIMENTS]
FIGURE_SOURCES = {"zoo": "results/zoo/{e}.h5", "features": "results/features/{e}.parquet"}
FIGURE_FILES = [f"results/figures/{name}.{ext}" for name in FIGURES for ext in ("pdf", "png")]


def package_code(*modules):
    """The package files a job runs, the import closure of its ``modules`` (relative to
    ``weightzoo``): as inputs, editing one of them reruns exactly the jobs that use it."""
    return [str(p) for p in closure(*(f"weightzoo.{m}" for m in modules))]


def experiments_of(model):
    return [name for name, e in EXPERIMENTS.items() if e["model"] == model]


def figure_experiments(wildcards):
    model = FIGURES[wildcards.figure].model
    return list(EXPERIMENTS) if model is None else experiments_of(model)


def figure_sources(wildcards):
    """The features tables or the zoos the figure draws from (registry: ``reads``)."""
    figure = FIGURES[wildcards.figure]
    pattern = FIGURE_SOURCES[figure.reads]
    return expand(pattern, e=figure_experiments(wildcards))


def figure_groups(wildcards):
    """Groups files, for figures that draw from zoos (a features table holds the groups)."""
    if FIGURES[wildcards.figure].reads == "features":
        return []
    return expand("results/groups/{e}.csv", e=figure_experiments(wildcards))


def figure_code(wildcards):
    figure = FIGURES[wildcards.figure]
    return package_code("stages.figures", f"figures.{figure.module}")


def train_job(wildcards):
    return JOBS[(wildcards.experiment, wildcards.arch, wildcards.chunk)]


def train_job_dict(wildcards):
    """The job as plain data (params must be comparable across runs for rerun checks)."""
    return asdict(train_job(wildcards))


def experiment_settings_dict(experiment):
    return experiment_settings(CONFIG, experiment).as_dict()


def job_files(wildcards):
    return [
        f"results/train/{j.experiment}/{j.arch_name}/{j.chunk}.h5"
        for j in JOBS.values()
        if j.experiment == wildcards.experiment
    ]
