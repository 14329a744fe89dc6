"""The project's own rules: ruff clean, formatted, and `snakemake --lint` clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*cmd):
    exe = cmd[0] if cmd[0] == "timeout" else str(BIN / cmd[0])
    return subprocess.run([exe, *cmd[1:]], cwd=REPO, capture_output=True, text=True)


def test_ruff_check_is_clean():
    proc = run("ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout


def test_ruff_format_is_clean():
    proc = run("ruff", "format", "--check", ".")
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/demo.yaml"])
def test_snakemake_lint_is_clean(configfile):
    proc = run(
        "timeout", "-k", "5", "120", str(BIN / "snakemake"), "--lint", "--configfile", configfile
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr
