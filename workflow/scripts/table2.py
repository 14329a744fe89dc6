"""Rule table2: the paper's Table 2 (count, min, median, max per group) as CSV and Markdown."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.pipeline import table2
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    table2(snakemake.input.groups, snakemake.output.csv, snakemake.output.md)
