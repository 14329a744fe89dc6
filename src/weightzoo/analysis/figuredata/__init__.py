"""What the figures draw, computed once by the workflow's ``figure_data`` rule.

The figure jobs only draw: every number they show comes from a file written here or from
another analysis output (features tables, claims and predictor CSVs). Restyling a figure
therefore never reruns a t-SNE or a KDE, and changing a t-SNE setting reruns the
embedding and the figures drawn from it, nothing else.

One file per kind of data and experiment, ``results/analysis/<kind>/<experiment>.parquet``
(:mod:`.store` writes and reads them; its docstring gives the layout):

* :mod:`.convergence` — every trial's loss and accuracy per epoch (Fig. 1);
* :mod:`.weight_kde` — per layer and group a subsample of the pooled weights and its
  Gaussian KDE (Figs 5-7);
* :mod:`.tsne` — per layer a 2-D t-SNE of each trial's weight descriptor (Figs 11-13);
* :mod:`.rwc` — per layer, group and epoch the median and quartiles of the relative
  weight change (the RWC figures).

Figs 2-4 and 8-10 draw from the features tables (:mod:`weightzoo.analysis.features`);
:mod:`.tables` holds the light views of those tables that the figures use.
This package imports nothing itself: the figures import :mod:`.store` and :mod:`.tables`
only, never the modules that compute.
"""
