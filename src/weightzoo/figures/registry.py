"""Which figure of the paper is drawn by which module, for which model family.

The workflow makes one target per entry: ``results/figures/<name>.pdf`` and ``.png``.
Names map one-to-one to the paper's figure numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    name: str  # file stem under results/figures/
    module: str  # module of weightzoo.figures with make(...)
    model: str | None  # the model family it shows; None = every experiment (Fig. 1)


FIGURES = (
    Figure("fig01_convergence", "fig01_convergence", None),
    Figure("fig02_weight_stats_dnn", "fig02_weight_stats", "dnn"),
    Figure("fig05_weight_kde_dnn", "fig05_weight_kde", "dnn"),
    Figure("fig08_node_strength_dnn", "fig08_node_strength", "dnn"),
    Figure("fig11_tsne_dnn", "fig11_tsne", "dnn"),
)


def figures_for(models: Iterable[str]) -> dict[str, Figure]:
    """The figures a config with these model families can draw."""
    models = set(models)
    return {f.name: f for f in FIGURES if (f.model is None and models) or f.model in models}
