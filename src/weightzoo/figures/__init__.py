"""The paper's figures, one module per figure (``figNN_<name>.py``).

Each module exposes ``make(zoo_paths, group_paths, out_pdf, out_png, **options)`` and
writes a PDF and a PNG atomically. Figures are drawn with :class:`matplotlib.figure.Figure`
directly (no pyplot state, no GUI backend), so they run headless and in parallel.
"""

FIGURE_MODULES = (
    "fig01_convergence",
    "fig02_weight_stats",
    "fig05_weight_kde",
    "fig08_node_strength",
    "fig11_tsne",
)
