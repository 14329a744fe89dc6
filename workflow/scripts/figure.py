"""Rule figure: one paper figure as PDF + PNG."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.pipeline import draw_figure
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    draw_figure(
        snakemake.params.module,
        snakemake.input.sources,
        snakemake.input.groups,
        snakemake.output.pdf,
        snakemake.output.png,
        snakemake.params.options,
        snakemake.params.number,
    )
