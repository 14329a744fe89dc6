# Stage 4: one job per paper figure (PDF + PNG). Each figure lists its own module and the
# analysis modules it imports as input, so editing one figure's code redraws that figure
# only. Figs 2-4 and 8-10 draw from the features tables, the others from the zoos.


rule figure:
    input:
        sources=figure_sources,
        groups=figure_groups,
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
