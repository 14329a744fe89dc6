"""Reading the claims CSV (``results/claims/claims.csv``; written by :mod:`.table`). Only
pandas: the claims figure reads the table without loading the statistics."""

from __future__ import annotations

import os

import pandas as pd


def read_claims(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True, dtype={"claim": str})
