"""Files of figure data: one parquet file per kind of data and experiment.

``results/analysis/<kind>/<experiment>.parquet`` holds, as rows, what the figure draws
(curves, weight samples and KDE curves, t-SNE points, bands: each kind's module says its
columns), and in the file's key-value metadata (``DataFrame.attrs``, kept by parquet):

* ``kind``: the kind of data (``convergence``, ``weight_kde``, ``tsne``, ``rwc``);
* ``experiment``: name, model, dataset, ``group_rule`` (the rule that made its groups),
  ``counts`` (trials per group, every group) and ``layers`` (analysed layers, input side
  first: the figure's columns);
* ``panels``: per layer what its panel says besides the rows: ``n_skipped`` (trials left
  out for non-finite weights), ``note`` (why the panel is empty; "" if it is not) and
  kind-specific numbers (the KDE's x-range);
* ``options``: the settings the data was computed with (captions quote them).

This module is light (pandas only): the figure jobs import it to read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ...io import atomic_output

KINDS = ("convergence", "weight_kde", "tsne", "rwc")


@dataclass
class FigureData:
    """One experiment's data of one kind, as a figure reads it."""

    kind: str
    rows: pd.DataFrame
    name: str
    model: str
    dataset: str
    group_rule: str
    counts: dict[str, int]
    layers: list[str]
    panels: dict[str, dict] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def panel(self, layer: str) -> dict:
        """What the panel of ``layer`` says besides its rows (``n_skipped``, ``note``)."""
        return {"n_skipped": 0, "note": "", **self.panels.get(layer, {})}

    def rows_of(self, layer: str) -> pd.DataFrame:
        return self.rows[self.rows["layer"] == layer]


def experiment_meta(exp) -> dict:
    """The ``experiment`` metadata of an :class:`~weightzoo.analysis.trials.Experiment`."""
    rules = exp.groups["group_rule"].astype(str) if "group_rule" in exp.groups else ["bands"]
    return {
        "name": exp.name,
        "model": exp.zoo.model,
        "dataset": exp.zoo.dataset,
        "group_rule": ",".join(dict.fromkeys(rules)),
        "counts": {g: int(n) for g, n in exp.counts().items()},
        "layers": list(exp.layer_labels()),
    }


def _plain(value):
    """Metadata as JSON-able Python values (numpy scalars become int / float)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def write_figure_data(
    path: str | os.PathLike,
    kind: str,
    rows: pd.DataFrame,
    experiment: Mapping,
    panels: Mapping[str, Mapping] | None = None,
    options: Mapping | None = None,
) -> None:
    """Write one file of figure data atomically (layout: the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    table = rows.reset_index(drop=True)
    table.attrs = _plain(
        {
            "kind": kind,
            "experiment": dict(experiment),
            "panels": dict(panels or {}),
            "options": dict(options or {}),
        }
    )
    with atomic_output(path) as tmp:
        table.to_parquet(tmp, index=False)


def read_figure_data(path: str | os.PathLike, kind: str) -> FigureData:
    """Read a file written by :func:`write_figure_data`; an error if it holds another kind."""
    table = pd.read_parquet(path)
    meta = dict(table.attrs)
    if meta.get("kind") != kind:
        raise ValueError(
            f"{path}: not {kind} figure data (kind {meta.get('kind')!r}); rebuild it with "
            f"`snakemake results/analysis/{kind}/<experiment>.parquet`"
        )
    table.attrs = {}
    exp = meta["experiment"]
    return FigureData(
        kind,
        table,
        exp["name"],
        exp["model"],
        exp["dataset"],
        exp["group_rule"],
        {g: int(n) for g, n in exp["counts"].items()},
        list(exp["layers"]),
        meta.get("panels", {}),
        meta.get("options", {}),
    )


def read_all(paths: Sequence[str | os.PathLike], kind: str) -> list[FigureData]:
    """:func:`read_figure_data` of each path, in order; an error if there are none."""
    if not paths:
        raise ValueError(f"no {kind} figure data given")
    return [read_figure_data(p, kind) for p in paths]


def group_rules(data: Sequence[FigureData]) -> dict[str, str]:
    """Experiment -> the rule that made its groups, for the figure's caption."""
    return {d.name: d.group_rule for d in data}
