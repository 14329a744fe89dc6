"""The ``weightzoo`` command: look into zoo files outside Snakemake.

    weightzoo info ZOO.h5 [--groups GROUPS.csv] [--json]
    weightzoo trials ZOO.h5 [--groups GROUPS.csv] [-o OUT.csv|OUT.parquet]
    weightzoo export ZOO.h5 --arch NAME (--trial K | --trial-id ID) -o TRIAL.pt
    weightzoo export ZOO.h5 --all -o DIR
    weightzoo import FORMAT PATH -o ZOO.h5 [--csv FILE] [--dataset NAME] [--experiment NAME]
                     [--accuracy-unit fraction|percent]

Wrong input (a missing file, a file that is not a zoo, an unknown architecture, a trial
out of range) ends with exit code 2 and one line on stderr naming what was asked and
what exists; a failed read or write (a damaged file, a full disk) with exit code 1 and
one line; no traceback. Details and examples: ``docs/cli.md``.

One module of about 600 lines on purpose: each subcommand is its parser, a few lines of
reading through :mod:`weightzoo.zoo.hdf5` and its printing, and they share the error
handling above; split, each part would be a parser without its command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from . import __version__
from .analysis.groups import ALL_GROUPS, read_groups_csv
from .data.catalog import IMAGE_SHAPES, NUM_CLASSES
from .io import atomic_output
from .zoo.hdf5 import (
    WEIGHT_SETS,
    ArchTrials,
    Zoo,
    checkpoint_epoch,
    read_trial_params,
    read_zoo,
)

# torch (and weightzoo.train.models, which needs it) is imported by `export` only: it is most of
# the start-up time of `info` and `trials`.

EXIT_IO = 1  # reading or writing failed
EXIT_USAGE = 2  # bad input: argparse's code for usage errors
TABLE_SUFFIXES = (".csv", ".parquet")
# columns a groups file adds to the per-trial table (the others repeat the zoo's)
GROUP_COLUMNS = ("grouped_by", "group_acc_pct", "group")


class CliError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


# --------------------------------------------------------------------------- reading


def _existing_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise CliError(f"{what} {path}: no such file")
    if not path.is_file():
        raise CliError(f"{what} {path}: not a file")
    return path


def _check_zoo_path(path: Path) -> Path:
    _existing_file(path, "zoo file")
    if not h5py.is_hdf5(path):
        raise CliError(
            f"{path}: not an HDF5 file; weightzoo reads zoo files (results/zoo/<experiment>.h5)"
        )
    return path


def load_zoo(path: Path, weights: Sequence[str] = ()) -> Zoo:
    """The zoo at ``path`` (no weights by default), or a :class:`CliError` saying why not."""
    _check_zoo_path(path)
    try:
        zoo = read_zoo(path, weights=weights)
    except ValueError as e:  # read_zoo's messages name the file and what is wrong
        raise CliError(str(e)) from None
    except (OSError, KeyError) as e:  # a damaged file
        raise CliError(f"{path}: cannot be read as a weightzoo zoo file ({e})") from None
    zoo.archs = _in_config_order(zoo)
    return zoo


def _in_config_order(zoo: Zoo) -> list:
    """The zoo's architectures in the order of its config (HDF5 lists groups by name, which
    puts h10-10 before h3-3); architectures the config does not list go last."""
    specs = zoo.config.get("architectures", [])
    rank = {json.dumps(spec, sort_keys=True): i for i, spec in enumerate(specs)}
    return sorted(zoo.archs, key=lambda a: rank.get(json.dumps(a.arch, sort_keys=True), len(rank)))


def load_groups(path: Path, zoo: Zoo) -> pd.DataFrame:
    """The groups file of ``zoo``'s experiment; refuses a file made from another zoo."""
    _existing_file(path, "groups file")
    try:
        groups = read_groups_csv(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise CliError(f"{path}: not a weightzoo groups file ({_one_line(e)})") from None
    experiments = sorted(set(groups["experiment"]))
    if experiments != [zoo.experiment]:
        raise CliError(
            f"groups file {path} is for experiment(s) {', '.join(experiments) or 'none'}, "
            f"the zoo is experiment {zoo.experiment}; pass results/groups/{zoo.experiment}.csv"
        )
    keys = ["arch", "trial_id"]
    in_zoo = zoo.trials_table()[keys]
    both = in_zoo.merge(groups[keys], on=keys, how="outer", indicator=True)
    if (both["_merge"] != "both").any():
        only_zoo = int((both["_merge"] == "left_only").sum())
        only_groups = int((both["_merge"] == "right_only").sum())
        raise CliError(
            f"groups file {path} does not match the zoo: {only_zoo} trials of the zoo are not "
            f"in it, {only_groups} of its trials are not in the zoo; regroup with snakemake "
            f"(results/groups/{zoo.experiment}.csv)"
        )
    return groups


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# --------------------------------------------------------------------------- info


def _id_range(ids: np.ndarray) -> str:
    """``0..99`` for consecutive ids, else how many and the extremes."""
    if len(ids) == 0:
        return "-"
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo + 1 == len(ids):
        return f"{lo}..{hi}"
    return f"{len(ids)} ids in {lo}..{hi}"


def _params_per_trial(path: Path) -> dict[str, int]:
    """Parameters per trial of each architecture, from the dataset shapes (no data read)."""
    counts = {}
    with h5py.File(path, "r") as f:
        for name, group in f["archs"].items():
            final = group.get("weights/final", {})
            counts[name] = int(sum(np.prod(ds.shape[1:], dtype=np.int64) for ds in final.values()))
    return counts


def _merged_settings(archs: Sequence[ArchTrials]) -> dict:
    """Settings shared by all architectures; a key that differs lists the values per arch."""
    keys = dict.fromkeys(k for a in archs for k in a.settings)
    merged = {}
    for key in keys:
        values = {a.arch_name: a.settings.get(key) for a in archs}
        distinct = {json.dumps(v, sort_keys=True) for v in values.values()}
        merged[key] = next(iter(values.values())) if len(distinct) == 1 else values
    return merged


def zoo_summary(path: Path, groups_path: Path | None = None) -> dict:
    """What ``weightzoo info`` shows, as plain JSON-ready data."""
    zoo = load_zoo(path)
    params = _params_per_trial(path)
    archs = []
    for a in zoo.archs:
        archs.append(
            {
                "arch": a.arch_name,
                "trials": a.n_trials,
                "trial_ids": _id_range(a.trials["trial_id"]),
                "diverged": int(np.sum(a.trials["diverged"])),
                "epochs": int(a.metrics["test_acc"].shape[1]),
                "params_per_trial": params.get(a.arch_name, 0),
                "spec": a.arch,
            }
        )
    summary = {
        "file": str(path),
        "file_bytes": path.stat().st_size,
        "experiment": zoo.experiment,
        "model": zoo.model,
        "dataset": zoo.dataset,
        "trials": sum(a["trials"] for a in archs),
        "epochs": sorted({a["epochs"] for a in archs}),
        "architectures": archs,
        "settings": _merged_settings(zoo.archs),
        "versions": zoo.versions,
        "config": zoo.config,
    }
    provenance = _provenance(path)
    if provenance:  # an imported zoo: where it came from (docs/import.md)
        summary["provenance"] = provenance
    if groups_path is not None:
        summary["groups"] = _group_counts(load_groups(groups_path, zoo), groups_path)
    return summary


def _provenance(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs.get("provenance", "{}"))


def _group_counts(groups: pd.DataFrame, path: Path) -> dict:
    per_arch = pd.crosstab(groups["arch"], groups["group"]).reindex(
        columns=list(ALL_GROUPS), fill_value=0
    )
    return {
        "file": str(path),
        "grouped_by": ",".join(sorted(set(groups["grouped_by"]))),
        "per_arch": {
            arch: {g: int(n) for g, n in row.items()} for arch, row in per_arch.iterrows()
        },
    }


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _kv(mapping: dict) -> str:
    def text(value) -> str:
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    return ", ".join(f"{k}={text(v)}" for k, v in mapping.items())


def _aligned(table: pd.DataFrame, indent: str = "  ") -> list[str]:
    """Rows of ``table`` as text: numbers right-aligned, text left-aligned."""
    columns = []
    for name in table.columns:
        cells = [str(name), *map(str, table[name])]
        width = max(map(len, cells))
        numeric = pd.api.types.is_numeric_dtype(table[name])
        columns.append([c.rjust(width) if numeric else c.ljust(width) for c in cells])
    return [(indent + "  ".join(row)).rstrip() for row in zip(*columns, strict=True)]


def format_summary(s: dict) -> str:
    """The summary as the aligned text ``weightzoo info`` prints."""
    n_archs = len(s["architectures"])
    epochs = ", ".join(map(str, s["epochs"]))
    head = [
        ("zoo", f"{s['file']} ({_human_bytes(s['file_bytes'])})"),
        ("experiment", s["experiment"]),
        ("model", s["model"]),
        ("dataset", s["dataset"]),
        ("trials", f"{s['trials']} in {n_archs} architecture{'s' * (n_archs != 1)}"),
        ("epochs", epochs),
    ]
    table = pd.DataFrame(s["architectures"]).drop(columns="spec")
    table["spec"] = [json.dumps(a["spec"], sort_keys=True) for a in s["architectures"]]
    if "groups" in s:
        counts = pd.DataFrame.from_dict(s["groups"]["per_arch"], orient="index")
        table = table.join(counts, on="arch")
        head.append(("groups", f"{s['groups']['file']} (by {s['groups']['grouped_by']} accuracy)"))
    tail = [("source", _kv(s["provenance"]))] if "provenance" in s else []
    tail += [
        ("settings", _kv(s["settings"])),
        ("versions", ", ".join(f"{k} {v}" for k, v in s["versions"].items())),
        ("config", json.dumps(s["config"], sort_keys=True)),
    ]
    width = max(len(k) for k, _ in head + tail) + 2
    lines = [f"{k:<{width}}{v}" for k, v in head]
    table = table[[c for c in table.columns if c != "spec"] + ["spec"]]  # widest last
    table = table.rename(columns={"trial_ids": "ids", "params_per_trial": "params/trial"})
    lines += ["", *_aligned(table), ""]
    lines += [f"{k:<{width}}{v}" for k, v in tail]
    return "\n".join(lines) + "\n"


def cmd_info(args: argparse.Namespace) -> None:
    summary = zoo_summary(args.zoo, args.groups)
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=False, default=str))
    else:
        sys.stdout.write(format_summary(summary))


# --------------------------------------------------------------------------- trials


def trials_table(path: Path, groups_path: Path | None = None) -> pd.DataFrame:
    """:meth:`Zoo.trials_table` (accuracies as fractions; ``setting_id`` and ``hp_<name>``
    where the zoo varies its training), with each trial's group when a groups file is
    given."""
    zoo = load_zoo(path)
    table = zoo.trials_table()
    for column in ("max_train_acc", "max_test_acc"):  # -inf marks all-NaN (diverged) rows
        table[column] = table[column].where(np.isfinite(table[column]))
    if groups_path is not None:
        groups = load_groups(groups_path, zoo)
        table = table.merge(
            groups[["arch", "trial_id", *GROUP_COLUMNS]], on=["arch", "trial_id"], how="left"
        )
    return table


def _table_format(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise CliError(
            f"-o {out}: unknown table format {suffix or '(no suffix)'}; "
            f"name the file {out.stem}.csv or {out.stem}.parquet"
        )
    return suffix


def _write_table(table: pd.DataFrame, out: Path) -> None:
    with atomic_output(out) as tmp:
        if _table_format(out) == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)


def cmd_trials(args: argparse.Namespace) -> None:
    if args.output is not None:
        _table_format(args.output)  # before the zoo is read
    table = trials_table(args.zoo, args.groups)
    if args.output is None:
        table.to_csv(sys.stdout, index=False)
    else:
        _write_table(table, args.output)
        print(f"wrote {args.output}: {len(table)} trials, {table.shape[1]} columns")


# --------------------------------------------------------------------------- export


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
            f"its trial ids: {_id_range(ids)}"
        )
    return int(where[0])


def _reference_module(zoo: Zoo, arch: ArchTrials, path: Path):
    from .train.models import get_family

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
    from .zoo.importers.export import export_zoo

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
    from .zoo.importers import import_zoo
    from .zoo.importers.errors import ZooImportError

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


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weightzoo",
        description="Look into weightzoo zoo files (results/zoo/<experiment>.h5), export "
        "them, and import zoos trained elsewhere.",
        epilog="Details: docs/cli.md. Bad input exits with code 2, a failed read or write "
        "with 1, each with one line on stderr.",
    )
    parser.add_argument("--version", action="version", version=f"weightzoo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def zoo_command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("zoo", type=Path, metavar="ZOO.h5", help="a zoo file")
        return p

    groups_help = "the experiment's groups file (results/groups/<experiment>.csv)"

    info = zoo_command(
        "info",
        "experiment, model, dataset, architectures with their trials (and groups), epochs, "
        "settings, versions and file size",
    )
    info.add_argument(
        "--groups",
        type=Path,
        metavar="GROUPS.csv",
        help=f"{groups_help}: count trials per group and architecture",
    )
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(run=cmd_info)

    trials = zoo_command(
        "trials",
        "the per-trial table: ids, seed, divergence, the training settings a zoo varies "
        "(setting_id, hp_<name>), final and best accuracies",
    )
    trials.add_argument(
        "--groups", type=Path, metavar="GROUPS.csv", help=f"{groups_help}: add each trial's group"
    )
    trials.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="write to OUT.csv or OUT.parquet (format from the suffix); default: CSV on stdout",
    )
    trials.set_defaults(run=cmd_trials)

    export = zoo_command(
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
    add_import_parser(sub)
    from .zoo.modelclass import add_evaluate_command  # a forward pass: weightzoo.zoo.modelclass

    add_evaluate_command(sub)
    return parser


def add_import_parser(sub) -> None:
    from .zoo.importers.sources import FORMATS

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors (argparse printed them)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    # a command may name more exceptions that mean bad input (args.user_errors)
    user_errors = (CliError, *getattr(args, "user_errors", ()))
    try:
        args.run(args)
    except user_errors as e:
        print(f"weightzoo {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `weightzoo trials ZOO.h5 | head`: the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as e:  # reading or writing failed (a damaged file, a full disk)
        print(f"weightzoo {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_IO
    return 0


if __name__ == "__main__":
    sys.exit(main())
