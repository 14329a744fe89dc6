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
    section: str = ""  # the HTML report's category (a section of the paper)
    caption: str = ""  # one-paragraph caption for the HTML report (reST)


# What each analysis draws, as the report's caption says it (the PDF/PNG carry their own,
# longer caption with the numbers of that run).
CAPTIONS = {
    "convergence": (
        "Loss and accuracy per epoch of every trial, coloured by accuracy group; rows are "
        "models, columns datasets."
    ),
    "weight_stats": (
        "Per layer, each trial's weight mean (x) against its standard deviation (y), "
        "coloured by accuracy group."
    ),
    "weight_kde": (
        "Per layer and accuracy group, the normalised histogram and Gaussian KDE of the "
        "trials' weights."
    ),
    "node_strength": (
        "Node strength (sum of a node's absolute incoming weights), a trial's mean per layer: "
        "layer l (x) against layer l+1 (y), coloured by accuracy group."
    ),
    "tsne": "t-SNE of each trial's per-layer weight descriptor, coloured by accuracy group.",
}
SECTIONS = {
    "convergence": "1 Convergence",
    "weight_stats": "2 Weight statistics",
    "weight_kde": "3 Weight distributions",
    "node_strength": "4 Node strength",
    "tsne": "5 Weight space (t-SNE)",
}


FIGURES = (
    Figure(
        "fig01_convergence",
        "fig01_convergence",
        None,
        1,
        section=SECTIONS["convergence"],
        caption=CAPTIONS["convergence"],
    ),
    # the paper's figures 2-13: four analyses, each drawn for DNN, CNN and ViT in turn
    *(
        Figure(
            f"fig{number:02d}_{analysis}_{model}",
            module,
            model,
            number,
            reads,
            ("analysis/features.py",) if reads == "features" else Figure.analysis,
            section=SECTIONS[analysis],
            caption=f"{model.upper()}. {CAPTIONS[analysis]}",
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
