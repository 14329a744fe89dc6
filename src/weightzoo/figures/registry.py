"""Which figure of the paper is drawn by which module, for which model family, from what.

The workflow makes one target per entry: ``results/figures/<name>.pdf`` and ``.png``.
Names map one-to-one to the paper's figure numbers. ``reads`` says what the figure job
gets as its first input: ``"features"`` tables (``results/features/*.parquet``) or
``"zoo"`` files with their groups; ``analysis`` lists the package files of
:mod:`weightzoo.analysis` the module imports (inputs of its job: editing one redraws it).
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
    reads: str = "zoo"  # "zoo" (zoo + groups files) or "features" (features tables)
    analysis: tuple[str, ...] = ("analysis/trials.py", "analysis/features.py")


FIGURES = (
    Figure("fig01_convergence", "fig01_convergence", None, 1),
    # the paper's figures 2-13: four analyses, each drawn for DNN, CNN and ViT in turn
    *(
        Figure(
            f"fig{number:02d}_{analysis}_{model}",
            module,
            model,
            number,
            reads,
            ("analysis/features.py",) if reads == "features" else Figure.analysis,
        )
        for first, analysis, module, reads in (
            (2, "weight_stats", "fig02_weight_stats", "features"),
            (5, "weight_kde", "fig05_weight_kde", "zoo"),
            (8, "node_strength", "fig08_node_strength", "features"),
            (11, "tsne", "fig11_tsne", "zoo"),
        )
        for number, model in enumerate(("dnn", "cnn", "vit"), start=first)
    ),
)


def figures_for(models: Iterable[str]) -> dict[str, Figure]:
    """The figures a config with these model families can draw."""
    models = set(models)
    return {f.name: f for f in FIGURES if (f.model is None and models) or f.model in models}
