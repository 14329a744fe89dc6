"""Forward passes of a zoo's trials through a model class the user names.

Everything that reads only weights (features, spectra, claims, predictor, figures) works
on any zoo. What runs a network (re-evaluating a trial's accuracy, a reconstructed
network's accuracy) needs the module the weights belong to: weightzoo's own families
build theirs (``ModelFamily.reference_module``); an imported zoo (model ``generic``) names
it, ``--model package.module:Class`` with ``--model-args '{"hidden": 32}'`` (JSON keyword
arguments of its constructor). Without one, :func:`require_model` says so.

A trial is loaded with ``module.load_state_dict(params, strict=True)`` (a name or shape
that does not fit is an error listing them) and evaluated as the trainer evaluates
(:meth:`weightzoo.train.trainer.EnsembleTrainer.evaluate`): images scaled to [0, 1] by
:class:`~weightzoo.train.trainer.TensorData`, the test split in chunks, mean
cross-entropy and the fraction of argmax hits, in evaluation mode without gradients.
``weightzoo evaluate`` (:func:`add_evaluate_command`) runs it from the shell.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..train.shapes import FORWARD_NEEDS_MODEL

GENERIC = "generic"
EVAL_CHUNK = 1000  # test images per forward pass


class ModelClassError(ValueError):
    """A model class that cannot be imported, built or loaded with a trial's weights."""


def require_model(target: str | None, what: str) -> str:
    """``target`` when given; else the error that ``what`` (``re-evaluating a trial``)
    needs a forward pass, hence ``--model``."""
    if not target:
        raise ModelClassError(f"{what} needs a forward pass: {FORWARD_NEEDS_MODEL}")
    return target


@dataclass(frozen=True)
class ModelClass:
    """A user's ``nn.Module`` class and its constructor's keyword arguments."""

    target: str  # package.module:Class
    kwargs: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, target: str, model_args: str | Mapping | None = None) -> ModelClass:
        """From ``--model`` and ``--model-args`` (a JSON object or a mapping)."""
        if model_args is None or model_args == "":
            kwargs = {}
        elif isinstance(model_args, Mapping):
            kwargs = dict(model_args)
        else:
            try:
                kwargs = json.loads(model_args)
            except json.JSONDecodeError as e:
                raise ModelClassError(
                    f"--model-args {model_args!r}: not JSON ({e.msg}); give an object, "
                    "e.g. '{\"hidden\": 32}'"
                ) from None
        if not isinstance(kwargs, dict):
            raise ModelClassError(
                f"--model-args {model_args!r}: give a JSON object of keyword arguments"
            )
        spec = cls(target, kwargs)
        spec.model_class()  # fail here, naming the target, not at the first trial
        return spec

    def model_class(self) -> type:
        """The class ``target`` names, imported (the current folder is importable, as for
        ``python -m``)."""
        module_name, sep, attr = self.target.partition(":")
        if not sep or not module_name or not attr:
            raise ModelClassError(
                f"--model {self.target!r}: write package.module:Class (a module importable "
                "from the current folder or the installed packages, a colon, the class)"
            )
        if os.getcwd() not in map(os.path.abspath, sys.path):
            sys.path.insert(0, os.getcwd())
        try:
            found = importlib.import_module(module_name)
        except ImportError as e:
            raise ModelClassError(
                f"--model {self.target!r}: cannot import {module_name} ({e})"
            ) from None
        for part in attr.split("."):
            found = getattr(found, part, None)
            if found is None:
                raise ModelClassError(f"--model {self.target!r}: {module_name} has no {attr}")
        if not callable(found):
            raise ModelClassError(f"--model {self.target!r}: {attr} is not a class")
        return found

    def build(self):
        """A fresh module: ``Class(**kwargs)``; an error naming the arguments otherwise."""
        import torch

        try:
            module = self.model_class()(**self.kwargs)
        except TypeError as e:
            raise ModelClassError(
                f"--model {self.target!r} with --model-args {json.dumps(self.kwargs)}: {e}"
            ) from None
        if not isinstance(module, torch.nn.Module):
            raise ModelClassError(
                f"--model {self.target!r} built a {type(module).__name__}, not a torch.nn.Module"
            )
        return module

    def load(self, params: Mapping[str, np.ndarray], where: str = "the trial"):
        """A module holding ``params`` (one trial's ``{name: array}``), in eval mode."""
        return load_params(self.build(), params, f"--model {self.target!r}", where)


def load_params(module, params: Mapping[str, np.ndarray], what: str, where: str):
    """``module`` with ``params`` loaded strictly; an error listing what does not fit."""
    import torch

    state = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in params.items()}
    own = module.state_dict()
    missing = [n for n in own if n not in state]
    unexpected = [n for n in state if n not in own]
    wrong = [
        f"{n} {tuple(state[n].shape)} vs {tuple(own[n].shape)}"
        for n in own
        if n in state and tuple(state[n].shape) != tuple(own[n].shape)
    ]
    if missing or unexpected or wrong:
        parts = [
            f"missing {missing}" if missing else "",
            f"unexpected {unexpected}" if unexpected else "",
            f"shapes (stored vs module) {wrong}" if wrong else "",
        ]
        raise ModelClassError(
            f"{where} does not fit {what}: " + "; ".join(p for p in parts if p) + "; check "
            "--model and --model-args (the constructor must build the trial's architecture)"
        )
    module.load_state_dict(state, strict=True)
    return module.eval()


def evaluate_module(module, x, y, chunk: int = EVAL_CHUNK) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (fraction) of ``module`` on ``x [N, ...]``, ``y [N]``,
    ``chunk`` images per forward pass, as the trainer's ``evaluate`` computes them."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = 0
    with torch.no_grad():
        for start in range(0, n, chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            logits = module(xb)
            if logits.ndim != 2 or logits.shape[0] != len(xb):
                raise ModelClassError(
                    f"the model returned {tuple(logits.shape)} for {len(xb)} images; "
                    "evaluation needs logits [batch, classes]"
                )
            loss_sum += F.cross_entropy(logits, yb).to(torch.float64) * len(xb)
            correct += int((logits.argmax(-1) == yb).sum())
    return float(loss_sum / n), correct / n


def test_split(data: str | os.PathLike, data_dir=None):
    """``(x, y)`` of the test split of ``data``: a prepared ``.npz``
    (``results/data/<dataset>.npz``) or a dataset name weightzoo knows (``digits``, ...;
    found in ``data_dir`` or the system's dataset packages, never downloaded here)."""
    from ..data.prepared import load_prepared
    from ..data.sources import read_raw
    from ..train.trainer import TensorData

    if str(data).endswith(".npz"):
        prepared = load_prepared(data)
    else:
        prepared = read_raw(str(data), data_dir, download=False, log=lambda *_: None)
    tensors = TensorData.from_arrays(
        prepared.x_train[:0],
        prepared.y_train[:0],
        prepared.x_test,
        prepared.y_test,
        prepared.pixel_max,
        prepared.num_classes,
    )
    return tensors.x_test, tensors.y_test


def trial_module(zoo, arch, index: int, params, model: ModelClass | None, input_shape, classes):
    """Trial ``index`` of ``arch`` as a module: the user's class, or for weightzoo's own
    families their reference module (with the trial's activation)."""
    where = f"{zoo.experiment}/{arch.arch_name} trial_id {int(arch.trials['trial_id'][index])}"
    if model is not None:
        return model.load(params, where)
    if zoo.model == GENERIC:
        require_model(None, f"evaluating {where} (an imported zoo)")
    from ..train.models import get_family

    activations = arch.hparams.get("activation")
    activation = (
        str(activations[index]) if activations is not None else arch.settings.get("activation")
    )
    family = get_family(zoo.model)
    module = family.reference_module(
        arch.arch, input_shape, classes, activation=activation or "relu"
    )
    return load_params(module, params, f"the {zoo.model} reference module", where)


def evaluate_zoo(
    zoo_path: str | os.PathLike,
    data: str | os.PathLike,
    model: ModelClass | None = None,
    *,
    arch: str | None = None,
    trials: Sequence[int] | None = None,
    weights: str = "final",
    data_dir=None,
    chunk: int = EVAL_CHUNK,
) -> pd.DataFrame:
    """Each trial's test loss and accuracy recomputed on ``data``'s test split, beside the
    accuracy the zoo stores. ``arch``: one architecture (default all); ``trials``: their
    positions within it (default all); ``weights``: final, initial or epoch_<k>.

    Columns: ``arch``, ``trial_id``, ``weights``, ``test_loss``, ``test_acc`` (fraction),
    ``stored_test_acc`` (the zoo's final test accuracy; NaN where it has none)."""
    from ..zoo.hdf5 import read_trial_params, read_zoo

    zoo = read_zoo(zoo_path, weights=())
    if zoo.model == GENERIC:
        require_model(getattr(model, "target", None), f"evaluating the trials of {zoo_path}")
    archs = [a for a in zoo.archs if arch is None or a.arch_name == arch]
    if not archs:
        known = ", ".join(a.arch_name for a in zoo.archs)
        raise ModelClassError(f"{zoo_path}: no architecture {arch!r}; architectures: {known}")
    x, y = test_split(data, data_dir)
    classes = int(y.max()) + 1 if len(y) else 0
    rows = []
    for a in archs:
        for index in range(a.n_trials) if trials is None else trials:
            params = read_trial_params(zoo_path, a.arch_name, int(index), weights)
            module = trial_module(zoo, a, int(index), params, model, tuple(x.shape[1:]), classes)
            loss, acc = evaluate_module(module, x, y, chunk)
            stored = a.metrics.get("test_acc")
            rows.append(
                {
                    "arch": a.arch_name,
                    "trial_id": int(a.trials["trial_id"][index]),
                    "weights": weights,
                    "test_loss": loss,
                    "test_acc": acc,
                    "stored_test_acc": float(stored[index, -1]) if stored is not None else np.nan,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the command


def add_evaluate_command(sub) -> argparse.ArgumentParser:
    """``weightzoo evaluate``: the subcommand, on the CLI's subparsers ``sub``."""
    help_text = (
        "recompute each trial's test accuracy with a forward pass on a dataset; an imported "
        "zoo names its model class with --model"
    )
    p = sub.add_parser("evaluate", help=help_text, description=help_text)
    p.add_argument("zoo", type=Path, metavar="ZOO.h5", help="a zoo file")
    p.add_argument(
        "--data",
        required=True,
        metavar="DATASET|FILE.npz",
        help="the test data: a dataset name (digits, mnist, fashion-mnist, cifar10) or a "
        "prepared dataset results/data/<dataset>.npz",
    )
    p.add_argument("--data-dir", type=Path, help="where the dataset's raw files lie")
    p.add_argument(
        "--model",
        metavar="package.module:Class",
        help="the nn.Module class the weights belong to (needed for an imported zoo; "
        "weightzoo's own zoos default to their reference module)",
    )
    p.add_argument(
        "--model-args",
        metavar="JSON",
        help="its constructor's keyword arguments, e.g. '{\"hidden\": 32}'",
    )
    p.add_argument("--arch", help="only this architecture")
    p.add_argument(
        "--trial", type=int, action="append", metavar="K", help="only the K-th trial (repeatable)"
    )
    p.add_argument("--weights", default="final", help="final (default), initial or epoch_K")
    p.add_argument("-o", "--output", type=Path, help="write the table as CSV")
    # ModelClassError is bad input: weightzoo.cli.main prints it as one line, exit code 2
    # (named here so that this module need not import the CLI, which imports it)
    p.set_defaults(run=cmd_evaluate, user_errors=(ModelClassError,))
    return p


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..io import atomic_output

    try:
        model = ModelClass.parse(args.model, args.model_args) if args.model else None
        table = evaluate_zoo(
            args.zoo,
            args.data,
            model,
            arch=args.arch,
            trials=args.trial,
            weights=args.weights,
            data_dir=args.data_dir,
        )
    except (ValueError, FileNotFoundError) as e:  # ModelClassError is a ValueError
        raise ModelClassError(str(e)) from None
    if args.output is not None:
        with atomic_output(args.output) as tmp:
            table.to_csv(tmp, index=False)
    print(table.to_string(index=False))
    gap = (table["test_acc"] - table["stored_test_acc"]).abs().max()
    print(
        f"{len(table)} trial(s) evaluated on {args.data}; largest gap to the stored test "
        f"accuracy: {gap:.4f}" + (f"; wrote {args.output}" if args.output else "")
    )
