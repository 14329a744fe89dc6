"""The GPU suite: runs on CUDA or Apple MPS, skipped where torch sees neither.

``pytest tests/gpu -m gpu`` on a GPU machine. The device gets what a training job gets
(weightzoo.train.device.apply_device_settings: on CUDA deterministic mode, full-precision
float32) before its first op. Measured numbers (largest differences, peak memory) are
printed in the terminal summary, ready for docs/gpu.md. ``WEIGHTZOO_GPU_SUITE_ON_CPU=1``
runs the suite on the CPU instead (to check the test code without a GPU)."""

from __future__ import annotations

import os

import pytest
import torch

from weightzoo.train.device import apply_device_settings, mps_available

REPORT: list[str] = []


@pytest.fixture(scope="session")
def gpu() -> torch.device:
    if os.environ.get("WEIGHTZOO_GPU_SUITE_ON_CPU") == "1":  # checks the test code itself
        return torch.device("cpu")
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif mps_available():
        device = torch.device("mps")
    else:
        pytest.skip("no GPU: torch sees neither CUDA nor Apple MPS")
    apply_device_settings(device)
    return device


@pytest.fixture(scope="session")
def report():
    """``report(line)`` adds a line to the terminal summary."""
    return REPORT.append


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("GPU measurements")
        for line in REPORT:
            terminalreporter.write_line(line)
