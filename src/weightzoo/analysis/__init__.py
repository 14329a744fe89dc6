"""Code that computes: per-trial features of a zoo's weights and what is derived from them.

Modules here never draw; :mod:`weightzoo.figures` draws from what they compute.

* :mod:`.features` — the features table, one row per (trial, layer, state)
  (``results/features/<experiment>.parquet``, columns in ``docs/features.md``);
  :mod:`.columns` — the column names it shares with the tables derived from it;
* :mod:`.trials` — zoos paired with their groups, and per-trial arrays of their weights;
* :mod:`.figuredata` — what the figures draw beyond the features table (curves, weight
  samples and KDEs, t-SNE embeddings, RWC bands), ``results/analysis/<kind>/``;
* :mod:`.predict` — final test accuracy predicted from the features table, and how early
  a trial's fate shows.
* :mod:`.stats` — stratified two-group statistics (permutation p-values, bootstrap CIs);
* :mod:`.claims` — the paper's claims tested on the features table
  (``results/claims/claims.{csv,md}``, ``docs/claims.md``).
"""
