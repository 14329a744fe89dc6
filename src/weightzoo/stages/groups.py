"""The groups stage (rules assign_groups, table2): accuracy groups and Table 2."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


def assign_groups(zoo_path, out_path, bands: Mapping | None, groups_config: Mapping) -> None:
    """Group one experiment's trials; ``groups_config`` is the experiment's ``groups``
    settings (:func:`weightzoo.config.group_settings`)."""
    from ..analysis import groups
    from ..zoo.hdf5 import read_zoo

    zoo = read_zoo(zoo_path)
    method = groups_config.get("method", "bands")
    table = groups.assign_groups(
        zoo.trials_table(),
        bands,
        accuracy=groups_config.get("accuracy", "test"),
        chance_tolerance=groups_config.get("chance_tolerance", 2.0),
        method=method,
        relative=groups_config.get("relative"),
    )
    groups.write_groups_csv(table, out_path)
    if method == "relative":
        converged = (table["group"] != "non").to_numpy()
        edges = groups.relative_edges(
            table["group_acc_pct"].to_numpy(float),
            converged,
            groups_config.get("relative") or groups.DEFAULT_RELATIVE,
        )
        log.info("%s: relative bands in this zoo, percent: %s", zoo.experiment, edges)
    log.info("%s (%s): %s", zoo.experiment, method, groups.group_counts(table))


def table2(group_paths, csv_path, md_path) -> None:
    from ..analysis import groups

    df = groups.table2([groups.read_groups_csv(p) for p in group_paths])
    groups.write_table2(df, csv_path, md_path)
    log.info("Table 2: %d rows from %d experiments", len(df), len(list(group_paths)))
