"""RWC figure data: per layer, accuracy group and epoch, the median and quartiles of the
trials' relative weight change (Agrawal et al. 2020; recorded during training,
docs/dynamics.md).

Rows of ``results/analysis/rwc/<experiment>.parquet``: :data:`~..dynamics.BAND_COLUMNS`
(``layer``, ``layer_index``, ``group``, ``epoch``, ``n``, ``median``, ``q25``, ``q75``) as
:func:`weightzoo.analysis.dynamics.group_bands` computes them. Panels (:mod:`.store`):
``n_skipped``, the trials with a non-finite value in any layer (left out of an epoch's
summary), the same for every layer; a ``note`` on every panel of an imported zoo, which
has no dynamics (no rows).
"""

from __future__ import annotations

from ..dynamics import dynamics_long, group_bands, has_dynamics, nonfinite_trials
from ..trials import load_experiments
from .store import experiment_meta, write_figure_data


def rwc_data(zoo_path, groups_path, out_path) -> None:
    """Write the RWC bands of one experiment to ``out_path``."""
    exp = load_experiments([zoo_path], [groups_path], weights=())[0]
    long = dynamics_long(exp.zoo, exp.trial_groups, "rwc")
    skipped = nonfinite_trials(long)
    note = "" if has_dynamics(exp.zoo) else "no layer dynamics: the zoo's source recorded none"
    panels = {layer: {"n_skipped": skipped, "note": note} for layer in exp.layer_labels()}
    write_figure_data(out_path, "rwc", group_bands(long), experiment_meta(exp), panels)
