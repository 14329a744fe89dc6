# Stage 3: accuracy groups per experiment (non/low/mid/high) and the paper's Table 2.


rule assign_groups:
    input:
        zoo="results/zoo/{experiment}.h5",
        code=package_code("stages.groups"),
    output:
        "results/groups/{experiment}.csv",
    params:
        bands=lambda wc: canonical(EXPERIMENTS[wc.experiment].get("bands")),
        groups=lambda wc: canonical(group_settings(CONFIG, wc.experiment)),
    log:
        "results/logs/assign_groups/{experiment}.log",
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/assign_groups.py"


# Table 2 gains columns on the training settings where an experiment varies them per
# trial; its caption then says what they hold (fixed settings keep the paper's caption).
TABLE2_CAPTION = (
    "../report/table2_settings.rst"
    if any(experiment_settings(CONFIG, e).varies() for e in EXPERIMENTS)
    else "../report/table2.rst"
)


rule table2:
    input:
        groups=expand("results/groups/{experiment}.csv", experiment=EXPERIMENTS),
        code=package_code("stages.groups"),
    output:
        csv=report(
            "results/tables/table2.csv",
            caption=TABLE2_CAPTION,
            category=SECTIONS["tables"],
            labels={"table": "Table 2"},
        ),
        md="results/tables/table2.md",
    log:
        "results/logs/table2.log",
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/table2.py"
