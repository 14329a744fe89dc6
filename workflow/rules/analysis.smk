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


rule table2:
    input:
        groups=expand("results/groups/{experiment}.csv", experiment=EXPERIMENTS),
        code=package_code("stages.groups"),
    output:
        csv=report(
            "results/tables/table2.csv",
            caption="../report/table2.rst",
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
