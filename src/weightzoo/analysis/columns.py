"""Column names the analysis tables share (standard library only, so that a light module
such as :mod:`.claims.definitions` can import them without loading the features code)."""

from __future__ import annotations

# what names a trial in the features table and the tables derived from it: its experiment
# (model, dataset), its architecture (name and index) and its id within that architecture
TRIAL_IDENTITY = ("experiment", "model", "dataset", "arch", "arch_index", "trial_id")
