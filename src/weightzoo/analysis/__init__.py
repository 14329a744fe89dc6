"""Code that computes: per-trial features of a zoo's weights and what is derived from them.

Modules here never draw; :mod:`weightzoo.figures` draws from what they compute.

* :mod:`.features` — the features table, one row per (trial, layer, state)
  (``results/features/<experiment>.parquet``, columns in ``docs/features.md``);
* :mod:`.trials` — zoos paired with their groups, per-trial feature arrays and weight
  samples for the figures that need more than the table (KDEs, t-SNE descriptors);
* :mod:`.predict` — final test accuracy predicted from the features table (issue 9 §3).
* :mod:`.stats` — stratified two-group statistics (permutation p-values, bootstrap CIs);
* :mod:`.claims` — the paper's claims tested on the features table
  (``results/claims/claims.{csv,md}``, ``docs/claims.md``).
"""
