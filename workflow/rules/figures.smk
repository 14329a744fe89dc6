# Stage 4: one job per paper figure (PDF + PNG). Each figure lists its own module and the
# analysis modules it imports as input, so editing one figure's code redraws that figure
# only. Figs 2-4 and 8-10 draw from the features tables, the others from the zoos.


def figure_sources(wildcards):
    """The features tables or the zoos the figure draws from (registry: ``reads``)."""
    figure = FIGURES[wildcards.figure]
    pattern = FIGURE_SOURCES[figure.reads]
    return expand(pattern, e=figure_experiments(wildcards))


def figure_groups(wildcards):
    """Groups files, for figures that draw from zoos (a features table holds the groups)."""
    if FIGURES[wildcards.figure].reads == "features":
        return []
    return expand("results/groups/{e}.csv", e=figure_experiments(wildcards))


def figure_code(wildcards):
    figure = FIGURES[wildcards.figure]
    own = ["figures/common.py", f"figures/{figure.module}.py", *figure.analysis]
    return package_code(*own, *(["zoo.py"] if figure.reads == "zoo" else []))


rule figure:
    input:
        sources=figure_sources,
        groups=figure_groups,
        code=figure_code,
    output:
        pdf="results/figures/{figure}.pdf",
        png="results/figures/{figure}.png",
    params:
        module=lambda wc: FIGURES[wc.figure].module,
        number=lambda wc: FIGURES[wc.figure].number,
        options=CONFIG["figures"],
    log:
        "results/logs/figures/{figure}.log",
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/figure.py"
