"""Does a zoo survive `weightzoo export --all` and `weightzoo import checkpoints`?

For each zoo file given: its export to a checkpoint folder under ``--work``, the folder's
import, and the features tables of both files compared value for value
(``weightzoo.zoo.importers.roundtrip``: rows matched by architecture, trial, weight set and
parameter name; the family's own layer labels and the training-only ``rwc`` columns left
out). Prints one row a zoo: trials, feature rows and columns compared, the columns that
differ (none is the claim of docs/import.md), and the time of each step. The zoo files are
only read.

Run ``python benchmarks/import_round_trip.py --help``; docs/import.md gives the results on
the demo's zoos.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from weightzoo.zoo.importers.roundtrip import round_trip

COLUMNS = (
    "zoo",
    "trials",
    "feature rows",
    "columns compared",
    "columns differing",
    "extra generic rows",
    "export s",
    "import s",
    "features s",
)


def row(result) -> str:
    cells = [
        result.zoo.name,
        result.trials,
        result.rows,
        len(result.columns),
        ", ".join(result.differing) or "none",
        result.extra_rows,
        *(f"{result.seconds[step]:.1f}" for step in ("export", "import", "features")),
    ]
    return "| " + " | ".join(map(str, cells)) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zoos", nargs="+", type=Path, metavar="ZOO.h5", help="zoo files")
    parser.add_argument(
        "--work",
        type=Path,
        required=True,
        metavar="DIR",
        help="where the exported folders and imported zoos are written (DIR/<zoo stem>)",
    )
    args = parser.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"| {' | '.join(COLUMNS)} |")
    print("|" + "---|" * len(COLUMNS))
    same = True
    for zoo in args.zoos:
        result = round_trip(zoo, args.work)
        print(row(result), flush=True)
        same = same and result.identical
    print("features table the same bit for bit: " + ("yes" if same else "NO"))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
