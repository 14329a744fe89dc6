"""The claims stage (rule claims): the paper's claims tested on the features tables."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


def claims(
    feature_paths,
    csv_path,
    md_path,
    claims_config: Mapping,
    accuracy: str,
    reconstruct_paths=(),
    claim_ratio: float = 0.1,
) -> None:
    """The paper's claims tested on every experiment's features table (docs/claims.md);
    claim 9 on the reconstruction tables ``reconstruct_paths`` (none: not tested)."""
    import pandas as pd

    from ..analysis.claims.definitions import SETTINGS_SCOPE
    from ..analysis.claims.settings import ClaimSettings
    from ..analysis.claims.table import test_claims, write_claims
    from ..analysis.features import read_features

    settings = ClaimSettings.from_config(claims_config, accuracy)
    features = pd.concat([read_features(p) for p in feature_paths], ignore_index=True)
    reconstruct = None
    if len(reconstruct_paths):
        from ..analysis.reconstruct.summary import read_table

        reconstruct = pd.concat([read_table(p) for p in reconstruct_paths], ignore_index=True)
    table = test_claims(features, settings, reconstruct, claim_ratio)
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
