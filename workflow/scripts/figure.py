"""Rule figure: one paper figure as PDF + PNG."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.figures import draw_figure

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
