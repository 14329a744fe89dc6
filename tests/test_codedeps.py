"""The code inputs of workflow rules: the static import closure of a stage module."""

import subprocess
import sys

import pytest

from weightzoo.codedeps import SRC, closure

PKG = SRC / "weightzoo"


def names(files):
    return {str(p.relative_to(PKG)) for p in files}


def test_closure_holds_the_module_its_imports_and_their_packages():
    files = names(closure("weightzoo.stages.zoo"))
    assert {"stages/zoo.py", "zoo/hdf5.py", "io.py"} <= files
    # importing a module runs the __init__ of every package above it
    assert {"__init__.py", "stages/__init__.py", "zoo/__init__.py"} <= files


def test_closure_leaves_out_what_the_module_does_not_import():
    files = names(closure("weightzoo.stages.zoo"))
    assert "train/trainer.py" not in files
    assert not any(f.startswith("figures/") for f in files)


def test_imports_inside_functions_count():
    # stages.groups imports weightzoo.analysis.groups only inside its functions
    assert "analysis/groups.py" in names(closure("weightzoo.stages.groups"))


def test_closure_imports_nothing():
    """The DAG build computes closures: reading the training stage must not load torch."""
    code = (
        "import sys; from weightzoo.codedeps import closure; "
        "closure('weightzoo.stages.train'); "
        "assert 'torch' not in sys.modules and 'weightzoo.train' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_module_is_named():
    with pytest.raises(ValueError, match="weightzoo.no_such_stage"):
        closure("weightzoo.no_such_stage")
