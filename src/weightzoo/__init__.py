"""weightzoo: zoos of small networks, their weights in HDF5, and the statistics of
good and bad networks (reproducing and extending arXiv:2408.11720)."""

import os

# MKL's strict reproducible mode, before torch first calls MKL (it reads this once): without
# it MKL picks a gemm kernel by each operand's memory alignment, and a trial stacked at an
# odd offset gets other last bits than the same trial alone (weightzoo.train.device.MKL_CBWR).
# Set MKL_CBWR yourself to override; the trainer warns when the mode is not in effect.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
