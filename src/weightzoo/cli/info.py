"""``weightzoo info`` and ``weightzoo trials``: what a zoo file holds, and its per-trial
table."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..analysis.groups import ALL_GROUPS
from ..io import atomic_output
from ..zoo.hdf5 import ArchTrials
from .common import CliError, id_range, load_groups, load_zoo, zoo_command

TABLE_SUFFIXES = (".csv", ".parquet")
# columns a groups file adds to the per-trial table (the others repeat the zoo's)
GROUP_COLUMNS = ("grouped_by", "group_acc_pct", "group")


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
                "trial_ids": id_range(a.trials["trial_id"]),
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


# --------------------------------------------------------------------------- parsers


def add_info_commands(sub) -> None:
    """``info`` and ``trials`` on the CLI's subparsers ``sub``."""
    groups_help = "the experiment's groups file (results/groups/<experiment>.csv)"

    info = zoo_command(
        sub,
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
        sub,
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
