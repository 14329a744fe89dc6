"""Rule prepare_data: locate one dataset and store it as results/data/<name>.npz."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.pipeline import prepare_data
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    prepare_data(snakemake.wildcards.dataset, snakemake.output[0], snakemake.params.data)
