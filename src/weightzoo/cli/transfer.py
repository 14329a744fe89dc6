"""``weightzoo export`` and ``weightzoo import``: one trial or a whole zoo out as state
dicts, and a zoo trained elsewhere in as a zoo file (weightzoo.zoo.importers)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..data.catalog import IMAGE_SHAPES, NUM_CLASSES
from ..io import atomic_output
from ..zoo.hdf5 import WEIGHT_SETS, ArchTrials, Zoo, checkpoint_epoch, read_trial_params
from .common import CliError, id_range, load_zoo, zoo_command

GENERIC = "generic"  # the family of imported zoos (weightzoo.train.shapes)
# torch (and weightzoo.train.models, which needs it) is imported by `export` only: it is
# most of the start-up time of `info` and `trials`.


def _pick_arch(zoo: Zoo, name: str, path: Path) -> ArchTrials:
    for a in zoo.archs:
        if a.arch_name == name:
            return a
    known = ", ".join(a.arch_name for a in zoo.archs)
    raise CliError(f"{path}: no architecture {name!r}; architectures in this zoo: {known}")


def _pick_trial(arch: ArchTrials, path: Path, index: int | None, trial_id: int | None) -> int:
    """The position of the requested trial within ``arch``."""
    n = arch.n_trials
    if index is not None:
        if not 0 <= index < n:
            raise CliError(
                f"{path}: --trial {index} is out of range for architecture {arch.arch_name}, "
                f"which has {n} trials: use --trial 0..{n - 1}"
            )
        return index
    ids = arch.trials["trial_id"]
    (where,) = np.nonzero(ids == trial_id)
    if len(where) == 0:
        raise CliError(
            f"{path}: architecture {arch.arch_name} has no trial with --trial-id {trial_id}; "
            f"its trial ids: {id_range(ids)}"
        )
    return int(where[0])


def _reference_module(zoo: Zoo, arch: ArchTrials, path: Path):
    from ..train.models import get_family

    if zoo.dataset not in IMAGE_SHAPES:
        known = ", ".join(IMAGE_SHAPES)
        raise CliError(f"{path}: dataset {zoo.dataset!r} unknown to weightzoo; known: {known}")
    try:
        family = get_family(zoo.model)
    except ValueError as e:  # names the models this weightzoo knows
        raise CliError(f"{path}: {e}") from None
    input_shape = IMAGE_SHAPES[zoo.dataset]
    module = family.reference_module(arch.arch, input_shape, NUM_CLASSES)
    how = (
        f"weightzoo.train.models.get_family({zoo.model!r}).reference_module("
        f"{json.dumps(arch.arch, sort_keys=True)}, {input_shape}, {NUM_CLASSES})"
    )
    return module, how


def refuse_a_zoo_without_a_model(zoo: Zoo, path: Path) -> None:
    """One trial is exported through its model (it must load before it is written); an
    imported zoo's family, ``generic``, has none to build."""
    if zoo.model != GENERIC:
        return
    raise CliError(
        f"{path}: zoo {zoo.experiment} is of the 'generic' family (imported: weightzoo "
        "knows its parameters' names and shapes, not the network that computes with them), "
        "which cannot rebuild a model to load one trial into before writing it; export "
        f"every trial as plain state dicts with `weightzoo export {path} --all -o DIR`, or "
        f"run trials through their own class with `weightzoo evaluate {path} --data "
        "DATASET --model package.module:Class`"
    )


def _weight_set(value: str) -> str:
    if value in WEIGHT_SETS or checkpoint_epoch(value) is not None:
        return value
    raise argparse.ArgumentTypeError(
        f"{value!r}: use final, initial or epoch_K (a checkpoint the zoo stores)"
    )


def cmd_export(args: argparse.Namespace) -> None:
    if args.all:
        export_all(args)
        return
    import torch

    path = args.zoo
    if args.arch is None:
        raise CliError("--arch NAME is needed with --trial or --trial-id (or export --all)")
    zoo = load_zoo(path)
    refuse_a_zoo_without_a_model(zoo, path)
    arch = _pick_arch(zoo, args.arch, path)
    k = _pick_trial(arch, path, args.trial, args.trial_id)
    try:
        arrays = read_trial_params(path, arch.arch_name, k, weights=args.weights)
    except ValueError as e:  # a checkpoint the zoo does not hold: the message lists them
        raise CliError(str(e)) from None
    state = {name: torch.from_numpy(np.ascontiguousarray(v)) for name, v in arrays.items()}
    module, how = _reference_module(zoo, arch, path)
    module.load_state_dict(state)  # proves the file loads before it is written
    with atomic_output(args.output) as tmp:
        torch.save(state, tmp)
    trial_id = int(arch.trials["trial_id"][k])
    accuracy = float(arch.metrics["test_acc"][k, -1]) * 100
    diverged = ", diverged" if arch.trials["diverged"][k] else ""
    print(
        f"wrote {args.output}: {zoo.experiment} {arch.arch_name} trial {k} (trial_id {trial_id}"
        f"{diverged}), {args.weights} weights, final test accuracy {accuracy:.2f} %; load with "
        f"model = {how}; model.load_state_dict(torch.load({str(args.output)!r}))"
    )


def export_all(args: argparse.Namespace) -> None:
    """Every trial of the zoo as a checkpoint folder (weightzoo.zoo.importers.export)."""
    from ..zoo.importers.export import export_zoo

    if args.arch is not None or args.weights != "final":
        raise CliError("--all exports every architecture and weight set; drop --arch and --weights")
    load_zoo(args.zoo)  # a missing or foreign file is a one-line error
    try:
        done = export_zoo(args.zoo, args.output)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(
        f"wrote {done.out}: {done.trials} trials of {done.archs} architecture"
        f"{'s' * (done.archs != 1)} ({done.files} state dicts) and {done.out / 'trials.csv'}; "
        f"import it with: weightzoo import checkpoints {done.out} -o ZOO.h5"
    )


# --------------------------------------------------------------------------- import


def cmd_import(args: argparse.Namespace) -> None:
    from ..zoo.importers import import_zoo
    from ..zoo.importers.errors import ZooImportError

    if args.output.suffix != ".h5":
        raise CliError(f"-o {args.output}: name the zoo file {args.output.stem}.h5")
    if not args.path.exists():
        raise CliError(f"{args.path}: no such file or folder")
    try:
        done = import_zoo(
            args.format,
            args.path,
            args.output,
            csv=args.csv,
            dataset=args.dataset,
            experiment=args.experiment,
            accuracy_unit=args.accuracy_unit,
            chunk_trials=args.chunk_trials,
        )
    except ZooImportError as e:
        raise CliError(str(e)) from None
    print(
        f"wrote {done.out}: {done.trials} trials in {len(done.archs)} architecture"
        f"{'s' * (len(done.archs) != 1)} ({', '.join(done.archs)}) from {args.format} "
        f"{args.path}, accuracies read as {done.provenance['accuracy_unit']}s, "
        f"{done.rate:.0f} trials/s; content sha256 {done.provenance['content_sha256'][:16]}..."
    )


# --------------------------------------------------------------------------- parsers


def add_export_command(sub) -> None:
    """``export`` on the CLI's subparsers ``sub``."""
    export = zoo_command(
        sub,
        "export",
        "one trial's weights as a torch state_dict that loads into the model family's "
        "reference module (weightzoo.train.models), or with --all every trial as a "
        "checkpoint folder that `weightzoo import checkpoints` reads (docs/import.md)",
    )
    export.add_argument(
        "--arch",
        metavar="NAME",
        help="architecture name, e.g. h16-8 (`weightzoo info` lists them); needed with "
        "--trial and --trial-id",
    )
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--all",
        action="store_true",
        help="every trial and weight set: DIR/<arch>/t<trial_id>[.initial|.epoch_K].pt and "
        "DIR/trials.csv (the checkpoint-folder format)",
    )
    which.add_argument(
        "--trial",
        type=int,
        metavar="K",
        help="the trial's index within the architecture, 0..(trials - 1), in trial_id order",
    )
    which.add_argument(
        "--trial-id", type=int, metavar="ID", help="the trial's trial_id (as in `trials`)"
    )
    export.add_argument(
        "--weights",
        type=_weight_set,
        default="final",
        metavar="final|initial|epoch_K",
        help="weights after training (default), before, or after epoch K "
        "(a checkpoint the zoo stores, training.checkpoint_epochs)",
    )
    export.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="TRIAL.pt|DIR",
        help="output file; with --all a new (or empty) folder",
    )
    export.set_defaults(run=cmd_export)


def add_import_command(sub) -> None:
    from ..zoo.importers.sources import FORMATS

    help_text = (
        "write a zoo file (model generic) from a zoo trained elsewhere: a checkpoint folder "
        "(one state dict per trial and a CSV), the Small CNN Zoo or the Model Zoos layout "
        "(docs/import.md); torch files load weights-only, never running code from the zoo"
    )
    p = sub.add_parser("import", help=help_text, description=help_text)
    p.add_argument("format", choices=FORMATS, metavar="FORMAT", help=" | ".join(FORMATS))
    p.add_argument("path", type=Path, metavar="PATH", help="the zoo's folder")
    p.add_argument(
        "-o", "--output", type=Path, required=True, metavar="ZOO.h5", help="the zoo file to write"
    )
    p.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="checkpoints: the trials table (default PATH/trials.csv); its file paths are "
        "relative to it",
    )
    p.add_argument(
        "--dataset", default="unknown", metavar="NAME", help="the dataset the zoo was trained on"
    )
    p.add_argument(
        "--experiment", metavar="NAME", help="the experiment name (default: the file's stem)"
    )
    p.add_argument(
        "--accuracy-unit",
        choices=("fraction", "percent"),
        help="how the source writes accuracies (default: inferred: all in [0, 1] fractions, "
        "else all in [0, 100] percent, else an error)",
    )
    p.add_argument(
        "--chunk-trials",
        type=int,
        default=256,
        metavar="N",
        help="trials whose weights are held in memory before they are written (default 256)",
    )
    p.set_defaults(run=cmd_import)
