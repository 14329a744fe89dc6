"""What the ``weightzoo`` subcommands share: the exit codes, the bad-input error, and
reading a zoo or a groups file with one-line errors."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from ..analysis.groups import read_groups_csv
from ..zoo.hdf5 import Zoo, read_zoo

EXIT_IO = 1  # reading or writing failed
EXIT_USAGE = 2  # bad input: argparse's code for usage errors


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
        raise CliError(f"{path}: not a weightzoo groups file ({one_line(e)})") from None
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


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def id_range(ids: np.ndarray) -> str:
    """``0..99`` for consecutive ids, else how many and the extremes."""
    if len(ids) == 0:
        return "-"
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo + 1 == len(ids):
        return f"{lo}..{hi}"
    return f"{len(ids)} ids in {lo}..{hi}"


def zoo_command(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand whose first argument is a zoo file."""
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("zoo", type=Path, metavar="ZOO.h5", help="a zoo file")
    return p
