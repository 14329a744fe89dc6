"""The claims stage (rule claims): the paper's claims tested on the features tables."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


def claims(feature_paths, csv_path, md_path, claims_config: Mapping, accuracy: str) -> None:
    """The paper's claims tested on every experiment's features table (docs/claims.md)."""
    import pandas as pd

    from ..analysis.claims.definitions import SETTINGS_SCOPE
    from ..analysis.claims.settings import ClaimSettings
    from ..analysis.claims.table import test_claims, write_claims
    from ..analysis.features import read_features

    settings = ClaimSettings.from_config(claims_config, accuracy)
    features = pd.concat([read_features(p) for p in feature_paths], ignore_index=True)
    table = test_claims(features, settings)
    write_claims(table, csv_path, md_path, settings)
    controlled = table.loc[table["scope"] == SETTINGS_SCOPE, "experiment"].unique()
    if len(controlled):
        log.info("training settings vary in %s: scope %s added", list(controlled), SETTINGS_SCOPE)
    log.info(
        "%d rows from %d experiments (%s); verdicts: %s; wrote %s, %s",
        len(table),
        len(list(feature_paths)),
        settings,
        table["verdict"].value_counts().to_dict(),
        csv_path,
        md_path,
    )
