"""Names and defaults of the accuracy groups: the groups, the grouping rules, the default
``groups.relative`` bands. Standard library only: configuration checks (run while Snakemake
builds its DAG) read the defaults from here without importing pandas or numpy;
:mod:`weightzoo.analysis.groups` applies the rules.
"""

from __future__ import annotations

GROUPS = ("non", "low", "mid", "high")
GROUP_RULES = ("bands", "relative")
# groups.relative defaults: fractions of the range worst..best converged trial. Chosen with
# gaps (the paper's groups are "close to" the ends and "around the middle") and wide
# enough to fill low, mid and high: on the demo's DNN zoo 182 / 78 / 208 of 500 trials
# (27 between); for the other demo and Fashion-MNIST zoos judged from their Table 2
# min / median / max only (docs/analysis.md, "Accuracy groups and Table 2")
DEFAULT_RELATIVE = {"low": (0.0, 0.4), "mid": (0.45, 0.75), "high": (0.8, 1.0)}
RULE_DESCRIPTIONS = {
    "bands": "fixed accuracy bands (config `bands`, inclusive [min, max] %)",
    "relative": "bands as fractions of the range from the worst to the best converged "
    "trial (config `groups.relative`)",
}
BETWEEN = "between"
ALL_GROUPS = (*GROUPS, BETWEEN)
BAND_GROUPS = ("low", "mid", "high")
ACCURACY_KINDS = ("test", "train")
