"""Rule table2: the paper's Table 2 (count, min, median, max per group) as CSV and Markdown."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.groups import table2

with job_log(snakemake.log[0]):
    table2(snakemake.input.groups, snakemake.output.csv, snakemake.output.md)
