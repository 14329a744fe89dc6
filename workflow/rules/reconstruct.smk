# Stage 6: neural representations of the trained weights (docs/reconstruct.md). Per
# experiment, a predictor network fitted to every trial at every compression ratio, and
# one shared representation per architecture; the rebuilt networks' test accuracy; a
# figure of the accuracy kept against the ratio. Claim 9 (rule claims) reads the tables.

RECONSTRUCT = CONFIG["reconstruct"]
# trained experiments only: an imported zoo (`source:`) has no forward pass to rebuild with
RECONSTRUCT_EXPERIMENTS = [
    e
    for e in TRAINED
    if RECONSTRUCT["enabled"]
    and (not RECONSTRUCT["experiments"] or e in RECONSTRUCT["experiments"])
]
RECONSTRUCT_TABLES = expand(
    "results/reconstruct/{experiment}.parquet", experiment=RECONSTRUCT_EXPERIMENTS
)
RECONSTRUCT_FILES = [
    *RECONSTRUCT_TABLES,
    *(
        [f"{BY_NAME['reconstruct'].path}.{ext}" for ext in ("pdf", "png")]
        if RECONSTRUCT_EXPERIMENTS
        else []
    ),
]


rule reconstruct:
    input:
        zoo="results/zoo/{experiment}.h5",
        groups="results/groups/{experiment}.csv",
        data=lambda wc: f"results/data/{EXPERIMENTS[wc.experiment]['dataset']}.npz",
        code=package_code("stages.reconstruct"),
    output:
        report(
            "results/reconstruct/{experiment}.parquet",
            caption="../report/reconstruct.rst",
            category=SECTIONS["reconstruct"],
            labels={"experiment": "{experiment}", "kind": "table"},
        ),
    params:
        reconstruct=canonical(RECONSTRUCT),
        training=lambda wc: experiment_settings_dict(wc.experiment),
        model=lambda wc: EXPERIMENTS[wc.experiment]["model"],
    log:
        "results/logs/reconstruct/{experiment}.log",
    benchmark:
        "results/benchmarks/reconstruct/{experiment}.tsv"
    threads: CONFIG["execution"]["threads"]
    # the fits run on the training device; memory: one chunk of trials
    # (reconstruct.trials_per_chunk), the shared fit one architecture's weights
    resources:
        gpu=training_gpus,
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/reconstruct.py"


rule reconstruct_figure:
    input:
        reconstruct=RECONSTRUCT_TABLES,
        code=registry_figure_code("reconstruct"),
    output:
        pdf=f"{BY_NAME['reconstruct'].path}.pdf",
        png=report(
            f"{BY_NAME['reconstruct'].path}.png",
            caption="../report/reconstruct_figure.rst",
            category=BY_NAME["reconstruct"].section,
            labels={"kind": "figure"},
        ),
    params:
        module=BY_NAME["reconstruct"].module,
        number=BY_NAME["reconstruct"].number,
    log:
        "results/logs/reconstruct/reconstruct_figure.log",
    benchmark:
        "results/benchmarks/reconstruct/reconstruct_figure.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/figure.py"
