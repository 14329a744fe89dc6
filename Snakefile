# weightzoo: train zoos of small networks, export their weights to HDF5, and rebuild
# Table 2 and the figures of arXiv:2408.11720.
#
#   snakemake --cores 8 all                                # the paper: results/
#   snakemake --cores 2 --configfile=config/demo.yaml all  # the demo: runs/demo/results/
#   snakemake --cores 2 results/figures/fig02_weight_stats_dnn.pdf
#
# Each config's outputs go to results/ inside its run directory (config `run_dir`; none:
# the directory snakemake runs in). Targets named on the command line are relative to it.
# Logic lives in the package src/weightzoo/; the rules only wire files together.

import os

from snakemake.utils import min_version

min_version("9.0")


# The paper's config unless the user names one (--configfile): Snakemake would otherwise
# merge both, and the demo would also run the paper's experiments.
# (relative to this file, so that `--directory` does not move it)
if not config:

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"


report: "workflow/report/workflow.rst"


# One working directory per run (Snakemake's convention: outputs under results/ relative to
# it), chosen by the config so that the demo can never overwrite the paper's results. An
# explicit `--directory` wins over it.
if RUN_DIR is not None:

    workdir: RUN_DIR


wildcard_constraints:
    dataset="|".join(DATASETS),
    experiment="|".join(EXPERIMENTS),
    chunk=r"t\d{5}-\d{5}",
    figure="|".join(FIGURES) or "no-figure",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/import.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/reconstruct.smk"
include: "workflow/rules/claims.smk"


# cheap rules run on the submit host, never as cluster jobs (prepare_data too: compute
# nodes of many clusters have no network for downloads)
localrules:
    all,
    prepare_data,
    assign_groups,
    table2,
    predict_table,


rule all:
    input:
        TABLE2,
        FEATURE_FILES,
        FIGURE_FILES,
        PREDICT_FILES,
        CLAIMS_FILES,
        RECONSTRUCT_FILES,
    default_target: True
