# Stage 5: final test accuracy predicted from weight features, per experiment
# (HistGradientBoosting + ridge; 5-fold CV and leave-one-architecture-out), one table over
# all experiments and a predicted-vs-true figure per experiment. docs/predict.md.

PREDICT_FILES = [
    *expand("results/predict/{experiment}.csv", experiment=EXPERIMENTS),
    *expand("results/predict/{experiment}.{ext}", experiment=EXPERIMENTS, ext=("pdf", "png")),
    "results/predict/predict.md",
    # how early a trial's fate shows, per experiment
    *expand("results/predict/{experiment}.early.csv", experiment=EXPERIMENTS),
    *expand(
        "results/predict/{experiment}.early.{ext}", experiment=EXPERIMENTS, ext=("pdf", "png")
    ),
]


rule predict:
    input:
        features="results/features/{experiment}.parquet",
        # the trials' reconstruction errors as a further input, where the experiment is
        # reconstructed (rule reconstruct)
        reconstruct=lambda wc: (
            [f"results/reconstruct/{wc.experiment}.parquet"]
            if wc.experiment in RECONSTRUCT_EXPERIMENTS
            else []
        ),
        code=package_code("stages.predict"),
    output:
        results=report(
            "results/predict/{experiment}.csv",
            caption="../report/predict.rst",
            category=SECTIONS["predict"],
            labels={"experiment": "{experiment}", "kind": "table"},
        ),
        oof="results/predict/{experiment}.oof.csv",
        arch="results/predict/{experiment}.arch.csv",
    log:
        "results/logs/predict/{experiment}.log",
    benchmark:
        "results/benchmarks/predict/{experiment}.tsv"
    threads: 1  # small trees on a few hundred trials: more threads only add overhead
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/predict.py"


rule predict_table:
    input:
        results=expand("results/predict/{experiment}.csv", experiment=EXPERIMENTS),
        code=package_code("stages.predict"),
    output:
        "results/predict/predict.md",
    log:
        "results/logs/predict_table.log",
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/predict_table.py"


rule predict_figure:
    input:
        results="results/predict/{experiment}.csv",
        oof="results/predict/{experiment}.oof.csv",
        code=registry_figure_code("predict"),
    output:
        pdf=f"{BY_NAME['predict'].path}.pdf",
        png=report(
            f"{BY_NAME['predict'].path}.png",
            caption="../report/predict_figure.rst",
            category=BY_NAME["predict"].section,
            labels={"experiment": "{experiment}", "kind": "figure"},
        ),
    params:
        module=BY_NAME["predict"].module,
        number=BY_NAME["predict"].number,
    log:
        "results/logs/predict_figure/{experiment}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/figure.py"


rule predict_early:
    input:
        features="results/features/{experiment}.parquet",
        code=package_code("stages.predict"),
    output:
        report(
            "results/predict/{experiment}.early.csv",
            caption="../report/predict_early.rst",
            category=SECTIONS["predict"],
            labels={"experiment": "{experiment}", "kind": "early table"},
        ),
    params:
        epochs=lambda wildcards: experiment_settings(CONFIG, wildcards.experiment).epochs,
    log:
        "results/logs/predict_early/{experiment}.log",
    benchmark:
        "results/benchmarks/predict_early/{experiment}.tsv"
    threads: 1  # as rule predict
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/predict_early.py"


rule predict_early_figure:
    input:
        early="results/predict/{experiment}.early.csv",
        code=registry_figure_code("predict_early"),
    output:
        pdf=f"{BY_NAME['predict_early'].path}.pdf",
        png=report(
            f"{BY_NAME['predict_early'].path}.png",
            caption="../report/predict_early_figure.rst",
            category=BY_NAME["predict_early"].section,
            labels={"experiment": "{experiment}", "kind": "early figure"},
        ),
    params:
        module=BY_NAME["predict_early"].module,
        number=BY_NAME["predict_early"].number,
    log:
        "results/logs/predict_early_figure/{experiment}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/figure.py"
