"""The paper's claims, tested per experiment and layer on the features table.

Input: the long features table (one row per trial, layer and state; see
``weightzoo.analysis.features`` and docs/features.md); only ``state == "final"`` rows with
finite weights (``nonfinite`` False) are used, and a test drops trials whose feature is NaN.
Groups compared: *high* against *low* and *mid* together ("low/mid"); *non* and *between*
trials take no part in group tests (the rank correlations with accuracy use every trial
except *non*).

Claims (the effect's expected sign in brackets):

1. high nets have a lower per-trial weight std: Cliff's delta of ``w_std`` (< 0);
2. high nets cluster tightly: Cliff's delta of the distance of each trial's standardised
   layer descriptor to its group's centroid (PERMDISP on distances, < 0);
3. the gap of claim 1 is largest in the final (classification) layer: with ``gap_l`` the
   mean log ``w_std`` of low/mid minus that of high in layer l (the log of the ratio of
   geometric means; positive when high nets have the lower std),
   ``gap_final - max over the other layers of gap_l`` (> 0);
   CI from the bootstrap, p-value from the estimate over its bootstrap standard error
   (normal approximation: its null, "equal gaps", is not a label exchange);
4. sharper peak near zero: (4a) Cliff's delta of ``w_kurtosis`` (> 0), (4b) of
   ``w_frac_near_zero`` (> 0);
5. (5a) node strengths of consecutive layers correlate more strongly in high nets: Spearman
   rho of ``strength_mean`` of layer l vs l+1 across trials, high minus low/mid (> 0);
   (5b) mean node strength higher in high nets for DNN and CNN (> 0), lower for ViT (< 0);
6. high nets separate from low/mid in weight space: mean silhouette of the high trials
   (their distance to low/mid trials against their distance to each other, > 0);
7. later layers change more than earlier ones (Agrawal et al. 2020): per trial, Kendall's
   tau between layer index and mean relative weight change ``rwc_mean`` (> 0; every trial,
   whatever its group);
8. WeightWatcher's power-law exponent (``ww_alpha``, the spectral columns of the features
   table; fits flagged ``ww_unreliable`` left out, so layers with < 50 eigenvalues are
   untested): (8a) lower in high nets: Cliff's delta (< 0); (8b) high nets' alpha lies in
   WeightWatcher's 2-6 "well trained" range: the fraction of high trials in [2, 6] minus
   1/2 (> 0; exact binomial test against 1/2, Wilson 95 % CI; pooled only).

Each is tested **pooled** (all architectures as one sample, as the paper did) and **within**
architecture (effects computed per architecture and averaged with weights
n_high*n_rest/(n_high+n_rest); labels permuted only inside each architecture, see
:mod:`weightzoo.analysis.stats`). Claims 1, 4a, 4b, 5b and 8a are also tested as Spearman
rank correlations between the statistic and the trial's accuracy: pooled, within (per
architecture, averaged with weights n) and per architecture; where the features table
carries the trials' training settings (``hp_<name>`` columns), also within architecture with
the settings controlled (scope ``within+settings``, :mod:`.controlled`). The verdict rule is
in :mod:`.verdicts`.

Modules, each importing only those above it:

* :mod:`.settings` — the ``claims:`` config block (standard library only: the config
  check imports it while Snakemake builds the DAG);
* :mod:`.definitions` — the claims, their columns, group labels, the table's columns;
* :mod:`.outcome` — one test's result and what every test shares;
* :mod:`.group_tests` — high against low/mid (claims 1-6, 8a);
* :mod:`.trial_tests` — correlations with accuracy, claim 7, claim 8b;
* :mod:`.controlled` — the correlations with accuracy with the training settings controlled;
* :mod:`.rows` — one experiment's rows; :mod:`.verdicts` — q-values and verdicts;
* :mod:`.grid` — the verdict grid's rows and columns; :mod:`.table` — :func:`test_claims`,
  the CSV and the Markdown; :mod:`.files` — the CSV read back (pandas only, for the
  figure).

This file imports only :mod:`.settings`, so that importing a light module of the package
does not load the statistics.
"""

from .settings import ClaimSettings, config_defaults

__all__ = ["ClaimSettings", "config_defaults"]
