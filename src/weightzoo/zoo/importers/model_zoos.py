"""The Model Zoos layout (Schürholt et al. 2022, ``ModelZoos/ModelZooDataset``): one folder
per model (a Ray Tune trial) holding ``checkpoint_<epoch>/checkpoints`` (a ``torch.save``
state dict after each epoch; ``checkpoint_0`` before training; the epoch may be
zero-padded to 6 digits), ``result.json`` (one JSON object per line and epoch, with
``test_acc``, ``train_acc`` and ``training_iteration``) and ``params.json`` (the model's
training settings).

Epoch 0 is the initial weights, the last checkpoint the final ones, every other checkpoint
``epoch_<k>``. Losses are read from ``test_loss``/``loss_test`` and
``train_loss``/``loss_train`` where present (not confirmed by the dataset's README).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..hdf5 import checkpoint_name
from .errors import ZooImportError
from .provenance import relative
from .records import SourcePlan, TrialRecord, empty_metrics, weight_sets_of
from .sources import MODEL_ZOOS, model_zoo_checkpoints, model_zoo_models
from .statedict import load_state_dict
from .table import as_fraction, resolve_unit

KEYS = {
    "test_acc": ("test_acc",),
    "train_acc": ("train_acc",),
    "test_loss": ("test_loss", "loss_test"),
    "train_loss": ("train_loss", "loss_train"),
}
SEED_KEYS = ("seed",)


def _json_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ZooImportError(f"{path} line {i}: not JSON ({e.msg})") from None
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, f"{key}."))
        elif isinstance(v, (str, int, float, bool)) or v is None:
            out[key] = str(v) if isinstance(v, bool) or v is None else v
        else:
            out[key] = json.dumps(v, sort_keys=True)
    return out


def _params(model: Path) -> dict:
    path = model / "params.json"
    if not path.is_file():
        return {}
    try:
        return _flat(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise ZooImportError(f"{path}: not JSON ({e.msg})") from None


def _history(results: list[dict], epochs: int) -> dict[str, np.ndarray]:
    metrics = empty_metrics(epochs)
    for i, line in enumerate(results):
        epoch = int(line.get("training_iteration", i + 1))
        if not 1 <= epoch <= epochs:
            continue
        for m, keys in KEYS.items():
            for key in keys:
                if isinstance(line.get(key), (int, float)):
                    metrics[m][epoch - 1] = float(line[key])
                    break
    return metrics


def plan(path: Path, accuracy_unit: str | None = None) -> SourcePlan:
    models = model_zoo_models(path)
    if not models:
        raise ZooImportError(
            f"{path}: no model folders (<model>/checkpoint_<epoch>/checkpoints); a Model "
            "Zoos root holds one folder per model"
        )
    checkpoints = {m: model_zoo_checkpoints(m) for m in models}
    results = {m: _json_lines(m / "result.json") for m in models}
    params = {m: _params(m) for m in models}
    last_result = [int(r[-1].get("training_iteration", len(r))) for r in results.values() if r]
    epochs = max([1, *last_result, *(max(c) for c in checkpoints.values())])
    histories = {m: _history(results[m], epochs) for m in models}
    rows = [f"{m / 'result.json'}" for m in models]
    accuracy = np.stack(
        [np.concatenate([h["test_acc"], h["train_acc"]]) for h in histories.values()]
    )
    unit = resolve_unit(accuracy, rows, accuracy_unit, "accuracy")
    for h in histories.values():
        for m in ("test_acc", "train_acc"):
            h[m] = as_fraction(h[m], unit)
    for m, h in histories.items():
        if np.isnan(h["test_acc"]).all():
            raise ZooImportError(
                f"{m / 'result.json'}: no test_acc on any line; each model's result.json "
                "gives its test accuracy per epoch"
            )
    seen = sorted({e for c in checkpoints.values() for e in c})
    weight_sets = weight_sets_of(seen, epochs)
    keys = sorted({k for p in params.values() for k in p} - set(SEED_KEYS))
    varying = [k for k in keys if len({json.dumps(p.get(k)) for p in params.values()}) > 1]
    source = SourcePlan(
        fmt=MODEL_ZOOS,
        path=str(path),
        epochs=epochs,
        n_trials=len(models),
        trials=lambda: iter(()),
        hparam_names=varying,
        weight_sets=weight_sets,
        accuracy_unit=unit,
        metadata_files=[
            m / n for m in models for n in ("result.json", "params.json") if (m / n).is_file()
        ],
    )

    def trials() -> Iterator[TrialRecord]:
        for model in models:
            weights = {}
            final_epoch = max(checkpoints[model])
            for epoch, file in checkpoints[model].items():
                state, digest = load_state_dict(file, f"model {model.name}")
                source.content.add(relative(file, path), digest)
                if epoch == 0:
                    weights["initial"] = state
                if 0 < epoch < epochs:
                    weights[checkpoint_name(epoch)] = state
                if epoch == final_epoch:
                    weights["final"] = state
            seed = params[model].get("seed", -1)
            yield TrialRecord(
                where=f"model {model}",
                weights=weights,
                metrics=histories[model],
                seed=int(seed) if isinstance(seed, (int, float)) else -1,
                hparams={k: params[model].get(k) for k in varying},
            )

    source.trials = trials
    return source
