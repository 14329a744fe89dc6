"""Column names the analysis tables share (standard library only, so that a light module
such as :mod:`.claims.definitions` can import them without loading the features code)."""

from __future__ import annotations

# a zoo that varies its training adds the trial's settings to the tables built from its
# trials: setting_id and hp_<name> (weightzoo.zoo.columns). Identity of a trial, like its
# seed: no analysis reads them as a weight statistic.
# (re-exported: the analysis tables name them from here)
from ..zoo.columns import HPARAM_PREFIX as HPARAM_PREFIX
from ..zoo.columns import SETTING_ID as SETTING_ID
from ..zoo.columns import hparam_columns as hparam_columns
from ..zoo.columns import is_hparam_column as is_hparam_column

# what names a trial in the features table and the tables derived from it: its experiment
# (model, dataset), its architecture (name and index) and its id within that architecture
TRIAL_IDENTITY = ("experiment", "model", "dataset", "arch", "arch_index", "trial_id")
