"""The ``weightzoo`` command: look into zoo files outside Snakemake.

    weightzoo info ZOO.h5 [--groups GROUPS.csv] [--json]
    weightzoo trials ZOO.h5 [--groups GROUPS.csv] [-o OUT.csv|OUT.parquet]
    weightzoo export ZOO.h5 --arch NAME (--trial K | --trial-id ID) -o TRIAL.pt
    weightzoo export ZOO.h5 --all -o DIR
    weightzoo import FORMAT PATH -o ZOO.h5 [--csv FILE] [--dataset NAME] [--experiment NAME]
                     [--accuracy-unit fraction|percent] [--chunk-trials N]
    weightzoo evaluate ZOO.h5 --data DATASET [--model package.module:Class] ...

Wrong input (a missing file, a file that is not a zoo, an unknown architecture, a trial
out of range) ends with exit code 2 and one line on stderr naming what was asked and
what exists; a failed read or write (a damaged file, a full disk) with exit code 1 and
one line; no traceback. Details and examples: ``docs/cli.md``.

One module a group of subcommands, each with its parser: :mod:`.info` (``info``,
``trials``), :mod:`.transfer` (``export``, ``import``), ``evaluate`` in
:mod:`weightzoo.zoo.modelclass`; :mod:`.common` holds the error and the readers they
share. This module builds the parser and runs a command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from .common import EXIT_IO, EXIT_USAGE, CliError, load_zoo, one_line
from .info import add_info_commands
from .transfer import add_export_command, add_import_command

__all__ = ["EXIT_IO", "EXIT_USAGE", "CliError", "build_parser", "load_zoo", "main"]


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

    add_info_commands(sub)
    add_export_command(sub)
    add_import_command(sub)
    from ..zoo.modelclass import add_evaluate_command  # a forward pass: weightzoo.zoo.modelclass

    add_evaluate_command(sub)
    return parser


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
        print(f"weightzoo {args.command}: error: {one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `weightzoo trials ZOO.h5 | head`: the reader left early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as e:  # reading or writing failed (a damaged file, a full disk)
        print(f"weightzoo {args.command}: error: {one_line(e)}", file=sys.stderr)
        return EXIT_IO
    return 0
