"""Every figure the workflow draws, what it reads, and the report's sections.

One table, :data:`REGISTRY`: the paper's Figs 1-13, the RWC figures, the claims summary,
and the per-experiment predictor and early-fate figures. Each entry names its module of
:mod:`weightzoo.figures` (every module has ``draw(inputs, out_pdf, out_png, *, number)``),
what the figure reads (``reads``: the key of its inputs, :data:`READS`) and where it is
written (``output``, without extension). Figures only draw: what they read is an
analysis output on disk (features tables, the figure data of
:mod:`weightzoo.analysis.figuredata`, claims and predictor CSVs).

The workflow's rule ``figure`` draws the entries written under ``results/figures/``
(:data:`FIGURES`); rules ``claims_figure``, ``predict_figure``, ``predict_early_figure``
and ``reconstruct_figure`` the others. This module imports nothing heavy: the Snakefile
reads it to build the DAG.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FIGURE_DIR = "results/figures"

# The HTML report's categories, numbered once each in this order (every report() output
# of the workflow takes its category from here).
_SECTION_TITLES = (
    ("tables", "Tables"),
    ("convergence", "Convergence"),
    ("weight_stats", "Weight statistics"),
    ("weight_kde", "Weight distributions"),
    ("node_strength", "Node strength"),
    ("tsne", "Weight space (t-SNE)"),
    ("rwc", "Training dynamics"),
    ("claims", "Claims tested"),
    ("predict", "Accuracy from weights"),
    ("reconstruct", "Neural representations"),
)
SECTIONS = {key: f"{i} {title}" for i, (key, title) in enumerate(_SECTION_TITLES)}

# What a figure reads -> the input name of its draw(): the features tables of its
# experiments, one kind of figure data per experiment (results/analysis/<kind>/), or the
# claims / predictor outputs. The keys among DATA_OPTIONS are figure-data kinds.
READS = {
    "features": "features",
    "convergence": "data",
    "weight_kde": "data",
    "tsne": "data",
    "rwc": "data",
    "claims": "claims",
    "predict": "predict",
    "early": "early",
    "reconstruct": "reconstruct",
}

# Figure-data kind -> {config `figures:` key: keyword of its computation}: the settings
# that decide its numbers (the figure_data rule's params; the figures have none).
DATA_OPTIONS = {
    "convergence": {},
    "weight_kde": {"kde_max_points": "max_samples", "seed": "seed"},
    "tsne": {"tsne_descriptor": "descriptor", "n_quantiles": "n_quantiles", "seed": "seed"},
    "rwc": {},
}


@dataclass(frozen=True)
class Figure:
    name: str  # the registry's key; the file stem for figures under results/figures/
    module: str  # module of weightzoo.figures with draw(inputs, out_pdf, out_png, *, number)
    model: str | None  # the model family it shows; None: every experiment (or each one)
    number: int  # the paper's figure number, shown in the title; 0: not in the paper
    reads: str  # a key of READS
    section: str = ""  # the HTML report's category (SECTIONS)
    caption: str = ""  # one-paragraph caption for the HTML report (reST)
    output: str = ""  # path without extension ({experiment}: one per experiment)

    @property
    def path(self) -> str:
        return self.output or f"{FIGURE_DIR}/{self.name}"


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
    "rwc": (
        "Beyond the paper: relative weight change of each layer per epoch (Agrawal et al. "
        "2020), median and interquartile band per accuracy group; rows are datasets."
    ),
}
MODELS = ("dnn", "cnn", "vit")  # the paper's, in the order of its figures
# beyond the paper: the Small CNN Zoo's network, and imported zoos (any state dict)
EXTRA_MODELS = ("smallcnn", "generic")
# families whose zoos record per-epoch layer dynamics (imported zoos have none: no RWC figure)
DYNAMICS_MODELS = (*MODELS, "smallcnn")
MODEL_LABELS = {
    "dnn": "DNN",
    "cnn": "CNN",
    "vit": "ViT",
    "smallcnn": "Small CNN",
    "generic": "Imported",
}

REGISTRY = (
    Figure(
        "fig01_convergence",
        "fig01_convergence",
        None,
        1,
        "convergence",
        SECTIONS["convergence"],
        CAPTIONS["convergence"],
    ),
    # the paper's figures 2-13: four analyses, each drawn for DNN, CNN and ViT in turn
    *(
        Figure(
            f"fig{number:02d}_{analysis}_{model}",
            module,
            model,
            number,
            reads,
            SECTIONS[analysis],
            f"{model.upper()}. {CAPTIONS[analysis]}",
        )
        for first, analysis, module, reads in (
            (2, "weight_stats", "fig02_weight_stats", "features"),
            (5, "weight_kde", "fig05_weight_kde", "weight_kde"),
            (8, "node_strength", "fig08_node_strength", "features"),
            (11, "tsne", "fig11_tsne", "tsne"),
        )
        for number, model in enumerate(MODELS, start=first)
    ),
    # the same four analyses for the Small CNN Zoo's network and for imported zoos (not in
    # the paper: unnumbered)
    *(
        Figure(
            f"{analysis}_{model}",
            module,
            model,
            0,
            reads,
            SECTIONS[analysis],
            f"{MODEL_LABELS[model]}. {CAPTIONS[analysis]}",
        )
        for analysis, module, reads in (
            ("weight_stats", "fig02_weight_stats", "features"),
            ("weight_kde", "fig05_weight_kde", "weight_kde"),
            ("node_strength", "fig08_node_strength", "features"),
            ("tsne", "fig11_tsne", "tsne"),
        )
        for model in EXTRA_MODELS
    ),
    # beyond the paper: RWC per layer over epochs (Agrawal et al. 2020), from the zoo's
    # recorded layer dynamics (docs/dynamics.md)
    *(
        Figure(
            f"rwc_{model}",
            "rwc",
            model,
            0,
            "rwc",
            SECTIONS["rwc"],
            f"{MODEL_LABELS[model]}. {CAPTIONS['rwc']}",
        )
        for model in DYNAMICS_MODELS
    ),
    # the other stages' figures, each with its own rule
    Figure(
        "claims", "claims", None, 0, "claims", SECTIONS["claims"], output="results/claims/claims"
    ),
    Figure(
        "predict",
        "predict",
        None,
        0,
        "predict",
        SECTIONS["predict"],
        output="results/predict/{experiment}",
    ),
    Figure(
        "predict_early",
        "early",
        None,
        0,
        "early",
        SECTIONS["predict"],
        output="results/predict/{experiment}.early",
    ),
    # beyond the paper: accuracy kept by networks rebuilt from predictor networks, against
    # the compression ratio (docs/reconstruct.md)
    Figure(
        "reconstruct",
        "reconstruct",
        None,
        0,
        "reconstruct",
        SECTIONS["reconstruct"],
        output="results/reconstruct/reconstruct",
    ),
)
BY_NAME = {f.name: f for f in REGISTRY}
FIGURES = tuple(f for f in REGISTRY if not f.output)  # drawn by rule figure
PAPER_FIGURES = tuple(f for f in REGISTRY if f.number > 0)


def figures_for(models: Iterable[str]) -> dict[str, Figure]:
    """The figures under results/figures/ that a config with these model families draws."""
    models = set(models)
    return {f.name: f for f in FIGURES if (f.model is None and models) or f.model in models}
