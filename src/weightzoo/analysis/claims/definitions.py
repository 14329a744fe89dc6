"""What is tested: the claims, the feature columns each one reads, the group labels and
the columns of the claims table. Standard library only (and :mod:`..columns`)."""

from __future__ import annotations

from ..columns import TRIAL_IDENTITY

HIGH = "high"
REST = ("low", "mid")
NON = "non"
REST_LABEL = "low/mid"
DESCRIPTOR_COLUMNS = (
    "w_mean",
    "w_std",
    "w_q0",
    "w_q25",
    "w_q50",
    "w_q75",
    "w_q100",
    "w_abs_mean",
    "w_kurtosis",
    "w_frac_near_zero",
    "strength_mean",
    "strength_std",
)
VERDICTS = ("supported", "contradicted", "inconclusive")
SCOPES = ("pooled", "within")
# the third scope, only where the features table carries the trials' training settings
# (hp_<name> columns): within architecture, with the settings controlled (.controlled)
SETTINGS_SCOPE = "within+settings"

CLAIMS = {
    "1": "high nets have a lower weight std than low/mid nets",
    "2": "high nets cluster tightly: smaller dispersion around their centroid",
    "3": "the std gap of claim 1 is largest in the final layer",
    "4a": "high nets' weights peak more sharply: higher kurtosis",
    "4b": "high nets have more weight mass near zero",
    "5a": "node strengths of consecutive layers correlate more strongly in high nets",
    "5b": "mean node strength higher in high nets (DNN, CNN), lower (ViT)",
    "6": "high nets separate from low/mid nets in weight space",
    "7": "later layers change more than earlier ones (Agrawal et al. 2020)",
    "8a": "high nets have a lower WeightWatcher alpha",
    "8b": "high nets' WeightWatcher alpha lies in its 2-6 'well trained' range",
    "9a": "high nets are reconstructed better by the zoo's shared representation",
    "9b": "high nets are more compressible: smaller error of their own predictor",
}
LAYER_ORDER = "rwc_mean"  # claim 7's per-layer value: mean relative weight change
# claims whose statistic is one number per trial: (feature column, expected sign of the
# high-vs-low/mid contrast, which is also the expected sign of its correlation with accuracy)
UNIVARIATE = {
    "1": ("w_std", -1),
    "4a": ("w_kurtosis", +1),
    "4b": ("w_frac_near_zero", +1),
    "8a": ("ww_alpha", -1),
}
# claim 9, from the reconstruction tables (.reconstruct_rows): per-trial relative
# reconstruction error, lower in high nets
RECONSTRUCT = {"9a": ("rec_shared_error", -1), "9b": ("rec_own_error", -1)}
ALPHA = "ww_alpha"
WELL_TRAINED = (2.0, 6.0)  # WeightWatcher's range of alpha for a well-trained layer
STRENGTH = "strength_mean"
TRIAL_KEY = ["arch", "trial_id"]  # a zoo numbers trials per architecture

COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "claim",
    "test",
    "scope",
    "layer",
    "statistic",
    "effect_name",
    "expected",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "verdict",
    "n",
    "n_high",
    "n_rest",
    "n_strata",
    "value_high",
    "value_rest",
    "note",
)

# the columns test_claims needs in the features table (and final_<accuracy>_acc)
REQUIRED_COLUMNS = (
    *TRIAL_IDENTITY,
    "group",
    "layer",
    "layer_index",
    "state",
    "nonfinite",
    STRENGTH,
    *DESCRIPTOR_COLUMNS,
)
