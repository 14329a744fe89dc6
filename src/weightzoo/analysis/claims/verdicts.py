"""The verdict of every row of the claims table, with ``q`` the Benjamini-Hochberg
q-value across the whole table:

* *inconclusive* when the row could not be tested (fewer than ``min_trials`` trials in a
  group; within: no architecture with at least 2 trials of both groups), when
  ``q >= alpha``, or when the 95 % CI includes 0;
* *supported* when ``q < alpha`` and the CI lies entirely on the expected side of 0;
* *contradicted* when ``q < alpha`` and the CI lies entirely on the other side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .settings import ClaimSettings


def add_verdicts(table: pd.DataFrame, settings: ClaimSettings) -> pd.DataFrame:
    """``table`` (the rows of :mod:`.rows`, with their private ``_tested`` and ``_sign``
    columns) given its ``q_value`` and ``verdict`` columns, in place."""
    tested = table["_tested"] & table["p_value"].notna()
    table["q_value"] = np.nan
    if tested.any():
        table.loc[tested, "q_value"] = sps.false_discovery_control(
            table.loc[tested, "p_value"].to_numpy(dtype=float)
        )
    significant = table["q_value"] < settings.alpha
    sign = table["_sign"]
    expected_side = np.where(sign > 0, table["ci_low"] > 0, table["ci_high"] < 0)
    other_side = np.where(sign > 0, table["ci_high"] < 0, table["ci_low"] > 0)
    table["verdict"] = np.select(
        [significant & expected_side, significant & other_side],
        ["supported", "contradicted"],
        "inconclusive",
    )
    return table
