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
    number: int  # the paper's figure number, shown in the title


FIGURES = (
    Figure("fig01_convergence", "fig01_convergence", None, 1),
    # the paper's figures 2-13: four analyses, each drawn for DNN, CNN and ViT in turn
    *(
        Figure(f"fig{number:02d}_{analysis}_{model}", module, model, number)
        for first, analysis, module in (
            (2, "weight_stats", "fig02_weight_stats"),
            (5, "weight_kde", "fig05_weight_kde"),
            (8, "node_strength", "fig08_node_strength"),
            (11, "tsne", "fig11_tsne"),
        )
        for number, model in enumerate(("dnn", "cnn", "vit"), start=first)
    ),
)


def figures_for(models: Iterable[str]) -> dict[str, Figure]:
    """The figures a config with these model families can draw."""
    models = set(models)
    return {f.name: f for f in FIGURES if (f.model is None and models) or f.model in models}
