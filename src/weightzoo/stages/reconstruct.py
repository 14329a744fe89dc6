"""The reconstruct stage (rule reconstruct): one experiment's trials fitted by predictor
networks (docs/reconstruct.md)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger(__name__)


def reconstruct(
    zoo_path, groups_path, data_path, out_path, block: Mapping, training: Mapping, model: str
) -> None:
    """``block``: the config's ``reconstruct:``; ``training``: the experiment's training
    settings (its device, dtype, CNN strategy and evaluation chunk are the fits' too)."""
    from ..analysis.groups import read_groups_csv
    from ..analysis.reconstruct.settings import ReconstructSettings
    from ..analysis.reconstruct.table import Runtime, reconstruct_zoo, write_table
    from ..train.models import family_for_device
    from ..train.settings import TrainSettings
    from .train import load_tensor_data

    settings = ReconstructSettings.from_config(block)
    train = TrainSettings(**training)
    data = load_tensor_data(data_path, train)
    device = data.x_train.device
    family = family_for_device(model, train.strategy, device)
    rt = Runtime(model, family, data, train.torch_dtype, device, train.eval_chunk_mb)
    log.info("reconstructing %s on %s (%s): %s", zoo_path, device, train.dtype, settings)
    table = reconstruct_zoo(zoo_path, read_groups_csv(groups_path), rt, settings)
    write_table(table, out_path)
    net = table[table["layer"] == "network"]
    summary = net.groupby(["kind", "ratio", "group"], dropna=False)[["rel_error", "acc_drop_pts"]]
    log.info("median per kind, ratio and group:\n%s", summary.median().to_string())
    log.info("%d rows; wrote %s", len(table), out_path)
