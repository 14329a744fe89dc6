"""Rules figure, claims_figure, predict_figure, predict_early_figure: one figure of the
registry (weightzoo.figures.registry) as PDF + PNG, drawn from its inputs."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.figures import draw_figure

inputs = {  # input name -> its files (a named input of one file is a string)
    name: [files] if isinstance(files, str) else list(files)
    for name, files in snakemake.input.items()
    if name != "code"
}
with job_log(snakemake.log[0]):
    draw_figure(
        snakemake.params.module,
        inputs,
        snakemake.output.pdf,
        snakemake.output.png,
        snakemake.params.number,
    )
