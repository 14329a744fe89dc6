"""Compute once, draw many: what reruns when a figure's drawing code, its analysis code or
its settings change, and which package code each kind of job runs.

The workflow tests build a tiny run of the figures' part of the workflow in a copy of the
repository (tests/test_workflow.py's helpers) and read the dry run's plan.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_workflow import TINY, copy_repo, edited, planned_jobs, snakemake, write_config

from weightzoo.codedeps import SRC, closure
from weightzoo.figures.registry import DATA_OPTIONS, REGISTRY

PACKAGE = SRC / "weightzoo"
# modules that compute what a figure shows: a figure job never runs them
COMPUTING = {
    "analysis/trials.py",
    "analysis/features.py",
    "analysis/spectral.py",
    "analysis/dynamics.py",
    *(f"analysis/figuredata/{kind}.py" for kind in DATA_OPTIONS),
    *(f"analysis/reconstruct/{m}.py" for m in ("coords", "predictor", "fit", "shared", "table")),
}
ANALYSIS_STAGES = {
    "features": ("stages.features",),
    "groups": ("stages.groups",),
    "claims": ("stages.claims",),
    "predict": ("stages.predict",),
    "reconstruct": ("stages.reconstruct",),
    **{kind: ("stages.figuredata", f"analysis.figuredata.{kind}") for kind in DATA_OPTIONS},
}


def package_files(*modules: str) -> set[str]:
    """The files of a job's code closure, relative to the package."""
    found = closure(*(f"weightzoo.{m}" for m in modules))
    return {Path(p).relative_to(PACKAGE).as_posix() for p in found}


@pytest.mark.parametrize("figure", REGISTRY, ids=lambda f: f.name)
def test_a_figure_job_runs_no_code_that_computes_figure_data(figure):
    files = package_files("stages.figures", f"figures.{figure.module}")
    assert f"figures/{figure.module}.py" in files
    assert not files & COMPUTING, f"{figure.name} runs {sorted(files & COMPUTING)}"
    other_figures = {f"figures/{f.module}.py" for f in REGISTRY} - {f"figures/{figure.module}.py"}
    assert not files & other_figures  # editing one figure never redraws another


@pytest.mark.parametrize("stage", sorted(ANALYSIS_STAGES))
def test_an_analysis_job_runs_no_drawing_code(stage):
    files = package_files(*ANALYSIS_STAGES[stage])
    assert not [f for f in files if f.startswith("figures/")], stage


def test_the_registry_is_light_to_import():
    files = package_files("figures.registry")
    assert files == {"__init__.py", "figures/__init__.py", "figures/registry.py"}


# ------------------------------------------------------------------ the workflow

TSNE = ["fig11_tsne_dnn", "fig12_tsne_cnn", "fig13_tsne_vit"]
TARGETS = [f"results/figures/{name}.pdf" for name in ("fig01_convergence", *TSNE)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the repo with Fig. 1 and the t-SNE figures of the tiny config built."""
    root = copy_repo(tmp_path_factory.mktemp("rebuilds"))
    config = write_config(root, TINY)
    snakemake(root, f"--configfile={config}", *TARGETS)
    return root, config


def tsne_figures() -> list[str]:
    return [f"results/figures/{n}.pdf, results/figures/{n}.png" for n in TSNE]


@pytest.mark.slow
def test_editing_a_figure_module_redraws_only_its_figures(built):
    root, config = built
    assert planned_jobs(root, f"--configfile={config}", *TARGETS) == {}
    with edited(root / "src" / "weightzoo" / "figures" / "fig11_tsne.py"):
        jobs = planned_jobs(root, f"--configfile={config}", *TARGETS)
    assert set(jobs) == {"figure"}  # no figure_data, no other figure
    assert sorted(jobs["figure"]) == tsne_figures()


@pytest.mark.slow
def test_editing_the_shared_drawing_code_computes_nothing(built):
    root, config = built
    with edited(root / "src" / "weightzoo" / "figures" / "common.py"):
        jobs = planned_jobs(root, f"--configfile={config}", *TARGETS)
    assert set(jobs) == {"figure"} and len(jobs["figure"]) == 4


@pytest.mark.slow
def test_changing_the_tsne_settings_reembeds_and_redraws_only_tsne(built):
    root, _ = built
    config = write_config(root, {**TINY, "figures": {"n_quantiles": 6}}, "quantiles.yaml")
    jobs = planned_jobs(root, f"--configfile={config}", *TARGETS)
    assert sorted(jobs["figure_data"]) == [
        f"results/analysis/tsne/{e}.parquet" for e in ("cnn_digits", "dnn_digits", "vit_digits")
    ]
    assert sorted(jobs["figure"]) == tsne_figures()
    assert set(jobs) == {"figure_data", "figure"}


@pytest.mark.slow
def test_editing_the_tsne_computation_reembeds(built):
    root, config = built
    tsne = root / "src" / "weightzoo" / "analysis" / "figuredata" / "tsne.py"
    with edited(tsne):
        jobs = planned_jobs(root, f"--configfile={config}", *TARGETS)
    assert len(jobs["figure_data"]) == 3 and all("/tsne/" in j for j in jobs["figure_data"])
    assert sorted(jobs["figure"]) == tsne_figures()
