"""Neural representations of trained weights (NeRN: Ashkenazi et al. 2023; the decoupled
scheme of Choi et al. 2024): how compressible a trial is, and how well one representation
shared by a zoo explains it. docs/reconstruct.md.

Modules, each importing only those above it:

* :mod:`.settings` — the ``reconstruct:`` config block (standard library only);
* :mod:`.coords` — layers as rows of targets, their coordinates, encoding and unit order;
* :mod:`.predictor` — the stacked per-trial MLPs and their sizes;
* :mod:`.fit` — batched fitting, the distillation phase, rebuilding the weights;
* :mod:`.shared` — the shared representation (an auto-decoder);
* :mod:`.table` — one experiment's table (results/reconstruct/<experiment>.parquet).

This file imports only :mod:`.settings`.
"""

from .settings import ReconstructSettings, config_defaults

__all__ = ["ReconstructSettings", "config_defaults"]
