"""Rule prepare_data: locate one dataset and store it as results/data/<name>.npz."""

import sys
from pathlib import Path

# the repository; scriptdir is ".../workflow/rules/../scripts": resolve it first
REPO = Path(snakemake.scriptdir).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # the repo's package

from weightzoo.runlog import job_log
from weightzoo.stages.data import prepare_data

with job_log(snakemake.log[0]):
    prepare_data(snakemake.wildcards.dataset, snakemake.output[0], snakemake.params.data, REPO)
