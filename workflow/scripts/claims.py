"""Rule claims: the paper's claims tested on the features tables (CSV + Markdown)."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.claims import claims

with job_log(snakemake.log[0]):
    claims(
        snakemake.input.features,
        snakemake.output.csv,
        snakemake.output.md,
        snakemake.params.claims,
        snakemake.params.accuracy,
        reconstruct_paths=snakemake.input.reconstruct,
        claim_ratio=snakemake.params.claim_ratio,
    )
