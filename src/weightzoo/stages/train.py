"""The training stage (rule train): one job's trials trained as a batched ensemble.

Before it trains, a job checks what config validation cannot without torch (validation
runs in Snakemake's process, which never imports it): the device ``training.device``
finds and whether it runs ``training.dtype`` (:func:`job_device`), and whether one trial
fits the device's memory (:func:`size_job`). Both errors name the experiment and the key.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

import torch

from ..data.prepared import load_prepared
from ..train import memory
from ..train.device import (
    DeviceError,
    apply_device_settings,
    device_memory_budget,
    max_array_bytes,
    resolve_device,
)
from ..train.models import ModelFamily, family_for_device
from ..train.seeds import trial_seeds
from ..train.settings import TrainSettings
from ..train.trainer import TensorData, train_trials
from ..train.variation import hparam_arrays, sample_job
from ..zoo.hdf5 import write_job_file

log = logging.getLogger(__name__)


def load_tensor_data(
    path, settings: TrainSettings, device: torch.device | None = None
) -> TensorData:
    prepared = load_prepared(path)
    device = device or resolve_device(settings.device, settings.dtype)
    return TensorData.from_arrays(
        prepared.x_train,
        prepared.y_train,
        prepared.x_test,
        prepared.y_test,
        prepared.pixel_max,
        prepared.num_classes,
        dtype=settings.torch_dtype,
        device=device,
    )


def job_device(job: Mapping, settings: TrainSettings) -> torch.device:
    """The device the job trains on (``training.device``, ``auto`` resolved here); a
    device that cannot run ``training.dtype`` (float64 on Apple MPS) raises
    :class:`weightzoo.train.device.DeviceError` naming the experiment and both keys."""
    try:
        return resolve_device(settings.device, settings.dtype)
    except DeviceError as e:
        raise DeviceError(f"experiments.{job['experiment']}: {e}") from None


def size_job(
    job: Mapping,
    family: ModelFamily,
    data: TensorData,
    settings: TrainSettings,
    device_memory_mb: int | str = "auto",
) -> dict:
    """How the job's trials fit the device: ``max_trials`` per sub-ensemble and
    ``eval_chunk`` (test samples per evaluation chunk), None = no limit. Raises
    :class:`weightzoo.memory.JobTooLarge` before any training where one trial does not fit."""
    device = data.x_train.device
    budget = device_memory_budget(device, device_memory_mb)
    if budget is not None:  # the dataset lives on the device too
        budget -= sum(
            t.numel() * t.element_size() for t in vars(data).values() if torch.is_tensor(t)
        )
    array_limit = max_array_bytes(device)
    if budget is None and array_limit is None:  # the CPU by default: as before, no sizing
        return {"max_trials": None, "eval_chunk": None, "budget_mb": None}
    step = memory.step_memory(
        family,
        job["arch"],
        data.input_shape,
        data.num_classes,
        settings.batch_size,
        settings.torch_dtype,
    )
    cap = memory.check_fits(job["experiment"], job["arch_name"], step, budget, array_limit)
    n_trials = job["stop"] - job["start"]
    per_ensemble = n_trials if cap is None else min(cap, n_trials)
    return {
        "max_trials": cap if cap is not None and cap < n_trials else None,
        "eval_chunk": memory.eval_chunk_samples(step, per_ensemble, budget, array_limit),
        "budget_mb": None if budget is None else memory.mb(budget),
        "estimated_step_mb": memory.mb(step.training_bytes(per_ensemble)),
    }


def train_job(
    job: Mapping,
    base_seed: int,
    settings: Mapping,
    data_path,
    out_path,
    progress_file=sys.stderr,
    device_memory_mb: int | str = "auto",
) -> None:
    """Train the trials ``job['start']..job['stop']-1`` of one architecture; write its HDF5."""
    settings = TrainSettings(**settings)
    device = job_device(job, settings)
    # before the first CUDA op: cuBLAS reads its workspace setting when it starts
    device_settings = apply_device_settings(device, settings.allow_tf32)
    data = load_tensor_data(data_path, settings, device)
    trial_ids = list(range(job["start"], job["stop"]))
    seeds = trial_seeds(base_seed, job["experiment"], job["arch_name"], trial_ids)
    values = sample_job(settings, base_seed, job["experiment"], job["arch_name"], trial_ids)
    log.info(
        "training %d trials of %s %s on %s (device %s, dtype %s)",
        len(seeds),
        job["experiment"],
        job["arch_name"],
        job["dataset"],
        data.x_train.device,
        settings.dtype,
    )
    family = family_for_device(job["model"], settings.strategy, data.x_train.device)
    sizing = size_job(job, family, data, settings, device_memory_mb)
    if sizing["max_trials"] is not None:
        log.info(
            "%s %s: %d trials do not fit the device's %s MB at once; training them in "
            "sub-ensembles of %d (execution.device_memory_mb)",
            job["experiment"],
            job["arch_name"],
            len(seeds),
            sizing["budget_mb"],
            sizing["max_trials"],
        )
    result = train_trials(
        family,
        job["arch"],
        seeds,
        data,
        settings,
        progress_file=progress_file,
        desc=f"{job['arch_name']} {len(seeds)} trials",
        max_trials=sizing["max_trials"],
        eval_chunk=sizing["eval_chunk"],
        trial_values=values,
    )
    result.settings["resolved_device"] = str(data.x_train.device)
    result.settings["resolved_strategy"] = getattr(family, "strategy", "batched")
    result.settings["device_settings"] = {**device_settings, "memory": sizing}
    hparams = hparam_arrays(settings.spec(), values or [], trial_ids, settings.replicates)
    trials = result.to_arch_trials(job["arch_name"], job["arch"], trial_ids, seeds, hparams)
    write_job_file(
        out_path,
        trials,
        {
            "experiment": job["experiment"],
            "model": job["model"],
            "dataset": job["dataset"],
            "config": {"job": dict(job), "seed": base_seed},
        },
    )
    log.info(
        "diverged: %d of %d; wrote %s", int(trials.trials["diverged"].sum()), len(seeds), out_path
    )
