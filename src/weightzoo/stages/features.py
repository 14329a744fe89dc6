"""The features stage (rule features): one experiment's features table."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def features(zoo_path, groups_path, out_path, spectral: bool = True) -> None:
    """The features table of one experiment (``results/features/<experiment>.parquet``);
    ``spectral``: WeightWatcher's columns too (config ``features.spectral``)."""
    from ..analysis.features import features_from_file, write_features
    from ..analysis.groups import read_groups_csv

    df = features_from_file(zoo_path, read_groups_csv(groups_path), spectral=spectral)
    write_features(df, out_path)
    log.info(
        "%s: %d rows (%d trials x layers x states), %d non-finite rows; wrote %s",
        df["experiment"].iat[0] if len(df) else zoo_path,
        len(df),
        df["trial"].nunique(),
        int(df["nonfinite"].sum()),
        out_path,
    )
    flagged = df.groupby(["layer", "state"], sort=False)["ww_unreliable"].agg(["sum", "size"])
    for (layer, state), r in flagged.iterrows():  # docs/reproduction counts the excluded layers
        log.info("spectral %s %s: %d of %d fits flagged unreliable", layer, state, *r)
