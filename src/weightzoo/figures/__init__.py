"""The figures, one module per figure (or per figure drawn for each model family).

Every module exposes ``draw(inputs, out_pdf, out_png, *, number, ...)``: ``inputs`` maps
an input name to its files (analysis outputs on disk, :mod:`.registry` says which), and
the figure is written as PDF and PNG atomically. Modules only draw: what they show is
computed by :mod:`weightzoo.analysis`. :mod:`.registry` lists every figure. Figures use
:class:`matplotlib.figure.Figure` directly (no pyplot state, no GUI backend), so they run
headless and in parallel.
"""
