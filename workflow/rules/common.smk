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
    canonical,
    experiment_settings,
    gpus_per_training_job,
    group_settings,
    is_imported,
    plan_jobs,
    resolve_path,
    validate_config,
)
from weightzoo.zoo.importers.sources import source_files  # noqa: E402
from weightzoo.figures.registry import (  # noqa: E402
    BY_NAME,
    DATA_OPTIONS,
    SECTIONS,
    figures_for,
)

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
try:
    CONFIG = validate_config(config, SCHEMA)
except ConfigError as error:
    raise WorkflowError(str(error)) from None

# relative to the repository, like every path in a config
RUN_DIR = resolve_path(CONFIG["run_dir"], workflow.basedir)
JOBS = {(j.experiment, j.arch_name, j.chunk): j for j in plan_jobs(CONFIG)}
EXPERIMENTS = CONFIG["experiments"]
# trained experiments (train + merge_zoo) and imported ones (`source:`, import_zoo)
TRAINED = [name for name, e in EXPERIMENTS.items() if not is_imported(e)]
IMPORTED = [name for name, e in EXPERIMENTS.items() if is_imported(e)]
DATASETS = sorted({EXPERIMENTS[e]["dataset"] for e in TRAINED})  # only these are prepared
MODELS = sorted({e["model"] for e in EXPERIMENTS.values()})
FIGURES = figures_for(MODELS)  # {figure name: Figure(module, model)}

TABLE2 = ["results/tables/table2.csv", "results/tables/table2.md"]
FEATURE_FILES = [f"results/features/{e}.parquet" for e in EXPERIMENTS]
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


def figure_inputs(wildcards):
    """What a figure draws from, by the registry's ``reads``: ``{"features": tables}`` or
    ``{"data": figure data of that kind}``, its experiments in config order."""
    reads = FIGURES[wildcards.figure].reads
    if reads == "features":
        return {"features": expand("results/features/{e}.parquet", e=figure_experiments(wildcards))}
    pattern = "results/analysis/{kind}/{e}.parquet"
    return {"data": expand(pattern, kind=reads, e=figure_experiments(wildcards))}


def figure_code(wildcards):
    return package_code("stages.figures", f"figures.{FIGURES[wildcards.figure].module}")


def registry_figure_code(name):
    """``code`` of the figure rules outside rule figure (claims, predict, early fate)."""
    return package_code("stages.figures", f"figures.{BY_NAME[name].module}")


def figure_data_code(wildcards):
    return package_code("stages.figuredata", f"analysis.figuredata.{wildcards.kind}")


def figure_data_options(wildcards):
    """The settings of config `figures:` that decide one kind of figure data, as the
    keywords of its computation (registry DATA_OPTIONS; canonical: only a changed value
    reruns a job). The KDE subsample of a panel is seeded by its place in the figure: the
    experiment's row among its model's experiments."""
    options = {kw: CONFIG["figures"][key] for key, kw in DATA_OPTIONS[wildcards.kind].items()}
    if wildcards.kind == "weight_kde":
        model = EXPERIMENTS[wildcards.experiment]["model"]
        options["row"] = experiments_of(model).index(wildcards.experiment)
    return canonical(options)


def train_job(wildcards):
    return JOBS[(wildcards.experiment, wildcards.arch, wildcards.chunk)]


def train_job_dict(wildcards):
    """The job as plain data (params must be comparable across runs for rerun checks; its
    architecture's keys are sorted, weightzoo.config.canonical)."""
    return asdict(train_job(wildcards))


def experiment_settings_dict(experiment):
    return experiment_settings(CONFIG, experiment).job_params()


def training_gpus(wildcards):
    """The train rule's ``gpu`` resource (resolving ``training.device: auto`` asks torch, in
    a child process: only when a training job is planned)."""
    return gpus_per_training_job(CONFIG)


def job_files(wildcards):
    return [
        f"results/train/{j.experiment}/{j.arch_name}/{j.chunk}.h5"
        for j in JOBS.values()
        if j.experiment == wildcards.experiment
    ]


def experiments_pattern(names):
    """A wildcard constraint matching exactly ``names`` (none: a name no experiment has)."""
    return "|".join(names) or "no-experiment"


def import_source(wildcards):
    """The experiment's ``source:`` as written (paths relative to the repository)."""
    return canonical(EXPERIMENTS[wildcards.experiment]["source"])


def import_inputs(wildcards):
    """Every file the import reads: a changed, added or removed one re-imports the zoo."""
    source = EXPERIMENTS[wildcards.experiment]["source"]
    csv = resolve_path(source.get("csv"), workflow.basedir)
    return source_files(source["format"], resolve_path(source["path"], workflow.basedir), csv)
