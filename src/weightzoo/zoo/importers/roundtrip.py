"""A zoo's round trip through a checkpoint folder: ``weightzoo export ZOO.h5 --all``, then
``weightzoo import checkpoints``, and the features tables of both files (the package's own
features code) compared value for value.

What the imported zoo cannot know is left out of the comparison, by name: its family is
``generic``, which labels a layer by its parameter name (``fc1`` where the DNN family says
``FC1``) and numbers the layers in state-dict order (the ViT's patch embedding is a layer to
it), so rows are matched by (architecture, trial, weight set, parameter name) and the
``model``, ``layer`` and ``layer_index`` columns are not compared; the layer dynamics
(``rwc``) are recorded during training and are not in a checkpoint. Layers the generic
family analyses and the trained family does not (the ViT's patch embedding) are counted,
not compared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..columns import hparam_columns
from ..hdf5 import Zoo, read_zoo
from .export import export_zoo
from .run import import_zoo

FAMILY_NAMED = ("model", "layer", "layer_index")
KEYS = ["arch", "trial_id", "state", "param"]


@dataclass
class RoundTrip:
    """What the comparison found: ``rows`` feature rows compared on ``columns``;
    ``differing`` the columns whose values are not the same; ``extra_rows`` rows of the
    imported zoo's layers that the original's family does not analyse."""

    zoo: Path
    imported: Path
    trials: int
    rows: int
    extra_rows: int
    columns: list[str]
    differing: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.differing


def compared_columns() -> list[str]:
    from ...analysis import features as F

    left_out = {*FAMILY_NAMED, *F.DYNAMICS_COLUMNS, *KEYS}
    return [c for c in F.COLUMNS if c not in left_out]


def parameter_of_layer(zoo: Zoo) -> dict[tuple[str, str], str]:
    """(architecture, layer label) -> the layer's parameter name, as the zoo's family
    reads each architecture."""
    from ...train.shapes import get_shapes

    family = get_shapes(zoo.model)
    layers = [(a.arch_name, layer) for a in zoo.archs for layer in family.layers(a.arch)]
    return {(arch, layer.label): layer.param for arch, layer in layers}


def features_by_parameter(path: Path) -> pd.DataFrame:
    """The features table of the zoo file at ``path`` (every weight set it stores; groups
    relative to each architecture's accuracies, which a round trip keeps), indexed by
    (arch, trial_id, state, parameter name), with the compared columns only: the
    weight statistics and identity columns, and the training settings the zoo varies."""
    from ...analysis import features as F
    from ...analysis.groups import assign_groups

    zoo = read_zoo(path, weights=())
    groups = assign_groups(zoo.trials_table(), None, method="relative")
    table = F.features_from_file(path, groups)
    param_of = parameter_of_layer(zoo)
    params = [param_of[key] for key in zip(table["arch"], table["layer"], strict=True)]
    columns = [*compared_columns(), *hparam_columns(table.columns)]
    return table.assign(param=params)[[*KEYS, *columns]].set_index(KEYS)


def differing_columns(before: pd.DataFrame, after: pd.DataFrame) -> list[str]:
    """The columns of ``before`` whose values differ in ``after`` on ``before``'s rows
    (exact: the same dtype and values, NaN where NaN); a missing row differs in all, a
    missing column differs."""
    if not before.index.isin(after.index).all() or not after.index.is_unique:
        return list(before.columns)
    after = after.loc[before.index]
    return [c for c in before.columns if c not in after or not before[c].equals(after[c])]


def compare_features(original: Path, imported: Path) -> RoundTrip:
    before = features_by_parameter(original)
    after = features_by_parameter(imported)
    trials = len(read_zoo(original, weights=()).trials_table())
    return RoundTrip(
        zoo=original,
        imported=imported,
        trials=trials,
        rows=len(before),
        extra_rows=len(after) - len(before),
        columns=list(before.columns),
        differing=differing_columns(before, after),
    )


def round_trip(zoo_path, work_dir) -> RoundTrip:
    """Export the zoo at ``zoo_path`` to ``work_dir/<stem>`` (a new folder), import it as
    ``work_dir/<stem>.h5`` (dataset and experiment kept) and compare the features."""
    zoo_path, work_dir = Path(zoo_path), Path(work_dir)
    zoo = read_zoo(zoo_path, weights=())
    folder, imported = work_dir / zoo_path.stem, work_dir / f"{zoo_path.stem}.h5"
    seconds = {}
    start = time.perf_counter()
    export_zoo(zoo_path, folder)
    seconds["export"] = time.perf_counter() - start
    start = time.perf_counter()
    import_zoo("checkpoints", folder, imported, dataset=zoo.dataset, experiment=zoo.experiment)
    seconds["import"] = time.perf_counter() - start
    start = time.perf_counter()
    result = compare_features(zoo_path, imported)
    seconds["features"] = time.perf_counter() - start
    result.seconds = seconds
    return result
