# Stage 4: compute once, draw many. Rule figure_data computes what a figure shows, one
# file per kind of data and experiment (weightzoo.analysis.figuredata: curves, weight
# samples and KDEs, t-SNE embeddings, RWC bands); rule figure draws one figure of the
# registry (weightzoo.figures.registry) from those files or from the features tables, and
# computes nothing. Restyling a figure redraws it only; changing a setting of
# config `figures:` recomputes the data it decides and redraws the figures drawn from it.


rule figure_data:
    input:
        zoo="results/zoo/{experiment}.h5",
        groups="results/groups/{experiment}.csv",
        code=figure_data_code,
    output:
        "results/analysis/{kind}/{experiment}.parquet",
    wildcard_constraints:
        kind="|".join(DATA_OPTIONS),
    params:
        options=figure_data_options,
    log:
        "results/logs/figure_data/{kind}/{experiment}.log",
    benchmark:
        "results/benchmarks/figure_data/{kind}/{experiment}.tsv"
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/figure_data.py"


rule figure:
    input:
        unpack(figure_inputs),
        code=figure_code,
    output:
        pdf="results/figures/{figure}.pdf",
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category=lambda wc: FIGURES[wc.figure].section,
            labels=lambda wc: {"figure": wc.figure},
        ),
    params:
        module=lambda wc: FIGURES[wc.figure].module,
        number=lambda wc: FIGURES[wc.figure].number,
        caption=lambda wc: FIGURES[wc.figure].caption,
    log:
        "results/logs/figures/{figure}.log",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/figure.py"
