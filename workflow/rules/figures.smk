# Stage 4: one job per paper figure (PDF + PNG). Each figure lists its own module as input,
# so editing one figure's code redraws that figure only.


rule figure:
    input:
        zoos=lambda wc: expand("results/zoo/{e}.h5", e=figure_experiments(wc)),
        groups=lambda wc: expand("results/groups/{e}.csv", e=figure_experiments(wc)),
        code=lambda wc: package_code(
            "figures/common.py", f"figures/{FIGURES[wc.figure].module}.py", "zoo.py"
        ),
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
