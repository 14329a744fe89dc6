"""The analysis jobs (figure data, figures, predictor, claims, groups, features) import no
torch: each job is its own process, and torch's import costs every one of them seconds,
which a run of many small jobs (the demo has about 60) pays in full. Only the code that
trains or computes norms and spectra imports it, where it uses it."""

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
stages = ("claims", "features", "figuredata", "figures", "groups", "predict")
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
