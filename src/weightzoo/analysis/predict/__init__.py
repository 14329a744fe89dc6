"""Final test accuracy, and how early a trial's fate shows, predicted from weight features.

After Unterthiner et al. 2020 ("Predicting Neural Network Accuracy from Weights"), per
experiment: a gradient-boosted tree regressor (scikit-learn's
``HistGradientBoostingRegressor``) and a linear baseline (``RidgeCV`` on standardised
features) predict a trial's final test accuracy (percent) from one of these inputs:

* ``final_weights``: the features of the trial's final weights (one column per feature
  and layer, from the long features table, ``state == "final"``);
* ``final_spectral``: the same plus WeightWatcher's spectral columns (``ww_*``,
  :mod:`.spectral`); a flagged (``ww_unreliable``) fit is NaN, never a reason to drop a
  trial (skipped when the table has no spectral columns);
* ``architecture``: the architecture alone (one-hot), the width baseline;
* ``initial_weights``: the features of the initial weights, a leakage check: initial
  weights carry no more than the architecture (and the seed), so under 5-fold CV this
  should score about as well as ``architecture``. (Under leave-one-architecture-out it
  can score far better than the one-hot code: its statistics carry the layer sizes as
  numbers, from which a model interpolates to an unseen width.)

Where the zoo's training settings vary per trial (the table has ``hp_<name>`` columns,
``docs/predict.md``), three inputs join: ``hyperparameters`` (the settings alone, encoded
inside the fitted pipeline: log10 of rates, a zero indicator and log10 of weight decay,
one-hot of names), ``architecture_hyperparameters`` and ``final_weights_hyperparameters``;
and a row ``weights_beyond_hyperparameters``, the scores of the last minus those of the
first on the same trials and folds, states what the weights say beyond the settings.
5-fold CV then keeps the replicates of a sampled setting in one fold (``GroupKFold`` on
architecture and ``setting_id``: replicates share their settings, and a replicate in the
training fold would give its setting's accuracy away) and runs with several fold seeds,
the scores being mean and sd over them. Tables without such columns give the output they
always gave.

Each is scored on held-out trials twice: 5-fold cross-validation (shuffled, fixed seed)
and leave-one-architecture-out (every architecture held out once; only with >= 2
architectures), which asks whether the weights predict accuracy beyond the width. Scores
are computed on the pooled out-of-fold predictions: R² (``sklearn.metrics.r2_score``),
Kendall's τ (``scipy.stats.kendalltau``) and τ within architectures (τ per architecture,
weighted by its trials), the part of the ranking the width cannot explain; τ of each
architecture alone (:func:`.accuracy.arch_taus`) from the out-of-fold predictions.

Trials are dropped, and counted, when a row of theirs is flagged ``nonfinite``, when a
feature of theirs is NaN where other trials of their architecture have a value, or when
their accuracy is not finite. Features no trial has (biases of a bias-free layer,
``travel`` on initial weights) are left out; features missing for a whole architecture (a
layer it lacks) stay NaN: the trees handle NaN natively, the linear model imputes the
median and adds a missing-indicator. Too few trials for the folds, a single architecture
for leave-one-architecture-out, or a constant accuracy give a row with ``status ==
"skipped"`` and the reason, never an error.

The same estimators and validation predict from the weights of every stored state
(``initial``, ``epoch_<k>``, ``final``) both the final accuracy and whether a trial ends in
the high group (:mod:`.early`), to tell how early the fate is readable.

Modules, each importing only those above it:

* :mod:`.files` — the CSV files' columns, the feature sets and validations (the values
  of two of them), writers and readers (pandas only);
* :mod:`.estimators` — the regressors and classifiers and :class:`PredictSettings`;
* :mod:`.design` — design matrices from the features table, with the drop rule above;
* :mod:`.validation` — splits, out-of-fold predictions and scores;
* :mod:`.accuracy` — :func:`predict_experiment`; :mod:`.early` — :func:`predict_early`;
* :mod:`.markdown` — ``results/predict/predict.md``.

This file imports nothing, so that a figure reading a CSV through :mod:`.files` does not
load scikit-learn.
"""
