"""weightzoo: zoos of small networks, their weights in HDF5, and the statistics of
good and bad networks (reproducing and extending arXiv:2408.11720)."""

__version__ = "0.1.0"
