"""The figure stage (rules figure, claims_figure, predict_figure,
predict_early_figure): drawing only."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


# config `figures:` keys -> keyword of the figure modules' make(); a module gets the ones
# its make() accepts
FIGURE_OPTIONS = {
    "tsne_descriptor": "descriptor",
    "n_quantiles": "n_quantiles",
    "kde_max_points": "max_samples",
    "seed": "seed",
}


def figure_kwargs(make, options: Mapping) -> dict:
    import inspect

    accepted = inspect.signature(make).parameters
    return {
        FIGURE_OPTIONS[k]: v
        for k, v in options.items()
        if k in FIGURE_OPTIONS and FIGURE_OPTIONS[k] in accepted
    }


def group_rules_of(sources, group_paths) -> dict[str, str]:
    """Experiment -> the rule that made its groups (``bands`` / ``relative``), from the
    features tables among ``sources`` and from the groups files."""
    import pandas as pd

    from ..analysis.groups import read_groups_csv

    tables = [
        pd.read_parquet(p, columns=["experiment", "group_rule"])
        for p in sources
        if str(p).endswith(".parquet")
    ]
    tables += [read_groups_csv(p)[["experiment", "group_rule"]] for p in group_paths]
    if not tables:
        return {}
    rules = pd.concat(tables, ignore_index=True).drop_duplicates()
    return rules.groupby("experiment", sort=False)["group_rule"].agg(",".join).to_dict()


def draw_figure(
    module: str, sources, group_paths, out_pdf, out_png, options: Mapping, number: int
) -> None:
    """Draw the paper's figure ``number`` with ``module`` (one module draws e.g. Figs 2-4)
    from ``sources``: zoo files (with ``group_paths``) or features tables, as the module
    reads (:mod:`weightzoo.figures.registry`)."""
    import importlib

    from ..figures.common import state_group_rules

    make = importlib.import_module(f"weightzoo.figures.{module}").make
    kwargs = {**figure_kwargs(make, options), "number": number}
    state_group_rules(group_rules_of(sources, group_paths))  # every caption names them
    log.info("drawing %s from %d experiments with %s", module, len(list(sources)), kwargs)
    make(list(sources), list(group_paths), str(out_pdf), str(out_png), **kwargs)


def claims_figure(csv_path, out_pdf, out_png) -> None:
    from ..analysis.claims import read_claims
    from ..figures.claims import make

    make(read_claims(csv_path), out_pdf, out_png)
    log.info("drew the claims summary: %s, %s", out_pdf, out_png)


def predict_figure(results_path, oof_path, out_pdf, out_png) -> None:
    from ..figures import predict as fig

    fig.make(results_path, oof_path, str(out_pdf), str(out_png))


def predict_early_figure(early_path, out_pdf, out_png) -> None:
    from ..figures import early as fig

    fig.make(early_path, str(out_pdf), str(out_png))
