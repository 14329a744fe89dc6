"""The analysis jobs (figure data, figures, predictor, claims, groups, features) import no
torch: each job is its own process, and torch's import costs every one of them seconds,
which a run of many small jobs (the demo has about 60) pays in full. Only the code that
trains or computes norms and spectra imports it, where it uses it, and the two jobs whose
work is torch's: rule train and rule reconstruct (it fits predictor networks to the
trials and runs the rebuilt networks, docs/reconstruct.md)."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ANALYSIS_JOB_IMPORTS = """
import importlib
import pkgutil
import sys

import weightzoo.analysis.claims
import weightzoo.analysis.figuredata
import weightzoo.analysis.predict
import weightzoo.analysis.reconstruct
import weightzoo.config
import weightzoo.figures

modules = [
    f"{package.__name__}.{info.name}"
    for package in (
        weightzoo.analysis.claims,
        weightzoo.analysis.figuredata,
        weightzoo.analysis.predict,
        weightzoo.figures,
    )
    for info in pkgutil.iter_modules(package.__path__)
]
modules += [
    "weightzoo.analysis.dynamics",
    "weightzoo.analysis.features",
    "weightzoo.analysis.spectral",
    "weightzoo.analysis.trials",
]
# the reconstruct stage imports torch inside its function, for its job only; its package
# and settings are read by the config and the claims and predict jobs
modules += ["weightzoo.analysis.reconstruct.settings"]
stages = ("claims", "features", "figuredata", "figures", "groups", "predict", "reconstruct")
modules += [f"weightzoo.stages.{stage}" for stage in stages]
for name in modules:
    importlib.import_module(name)
print(len(modules), "torch" in sys.modules)
"""


def test_analysis_jobs_import_no_torch():
    out = subprocess.run(
        [sys.executable, "-c", ANALYSIS_JOB_IMPORTS],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    n_modules, torch_imported = out.stdout.split()
    assert int(n_modules) > 30
    assert torch_imported == "False"


# the job scripts that import torch at their top: the jobs that need it
TORCH_JOB_SCRIPTS = {"reconstruct.py", "train.py"}


def test_only_the_training_and_reconstruct_jobs_import_torch():
    scripts = sorted((REPO / "workflow" / "scripts").glob("*.py"))
    assert scripts
    importing = {
        p.name
        for p in scripts
        if re.search(r"^\s*(import torch|from torch\b)", p.read_text(), re.MULTILINE)
    }
    assert importing == TORCH_JOB_SCRIPTS
