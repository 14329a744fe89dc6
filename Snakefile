# weightzoo: train zoos of small networks, export their weights to HDF5, and rebuild
# Table 2 and the figures of arXiv:2408.11720.
#
#   snakemake --cores 8 all                               # the paper (config/config.yaml)
#   snakemake --cores 2 all --configfile config/demo.yaml # the embedded demo
#   snakemake --cores 2 results/figures/fig02_weight_stats_dnn.pdf
#
# Logic lives in the package src/weightzoo/; the rules only wire files together.

from snakemake.utils import min_version

min_version("9.0")


# The paper's config unless the user names one (--configfile): Snakemake would otherwise
# merge both, and the demo would also run the paper's experiments.
if not config:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    dataset="|".join(DATASETS),
    experiment="|".join(EXPERIMENTS),
    chunk=r"t\d{5}-\d{5}",
    figure="|".join(FIGURES) or "no-figure",


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


# cheap rules run on the submit host, never as cluster jobs (prepare_data too: compute
# nodes of many clusters have no network for downloads)
localrules:
    all,
    prepare_data,
    assign_groups,
    table2,


rule all:
    input:
        TABLE2,
        FEATURE_FILES,
        FIGURE_FILES,
        CLAIMS_FILES,
    default_target: True
