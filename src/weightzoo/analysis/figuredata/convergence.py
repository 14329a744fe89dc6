"""Fig. 1 data: every trial's loss and accuracy per epoch, with the trial's group.

Rows of ``results/analysis/convergence/<experiment>.parquet``: one per trial and epoch,
``arch``, ``trial_id``, ``group``, ``epoch`` (1-based) and the metrics
:data:`METRICS` (losses as recorded, accuracies in percent; NaN after a trial
diverged), trials in the zoo's order. No panels: the figure decides what it leaves out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..trials import Experiment, load_experiments
from .store import experiment_meta, write_figure_data

METRICS = ("train_loss", "test_loss", "train_acc", "test_acc")


def convergence_rows(exp: Experiment) -> pd.DataFrame:
    """One row per trial and epoch of ``exp`` (module docstring)."""
    frames = []
    for a in exp.zoo.archs:
        t, e = a.metrics[METRICS[0]].shape
        values = {}
        for metric in METRICS:
            column = a.metrics[metric].astype(float)
            values[metric] = (column * 100.0 if metric.endswith("_acc") else column).reshape(-1)
        frames.append(
            pd.DataFrame(
                {
                    "arch": a.arch_name,
                    "trial_id": np.repeat(a.trials["trial_id"], e),
                    "group": np.repeat(exp.trial_groups[a.arch_name], e),
                    "epoch": np.tile(np.arange(1, e + 1), t),
                    **values,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def convergence_data(zoo_path, groups_path, out_path) -> None:
    """Write the curves of one experiment's trials to ``out_path``."""
    exp = load_experiments([zoo_path], [groups_path], weights=())[0]
    write_figure_data(out_path, "convergence", convergence_rows(exp), experiment_meta(exp))
