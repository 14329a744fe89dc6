# Stage 5 (issue 9 §3): final test accuracy predicted from weight features, per experiment
# (HistGradientBoosting + ridge; 5-fold CV and leave-one-architecture-out), one table over
# all experiments and a predicted-vs-true figure per experiment. docs/predict.md.

PREDICT_FILES = [
    *expand("results/predict/{experiment}.csv", experiment=EXPERIMENTS),
    *expand("results/predict/{experiment}.{ext}", experiment=EXPERIMENTS, ext=("pdf", "png")),
    "results/predict/predict.md",
    # issue 10 §3: how early a trial's fate shows, per experiment
    *expand("results/predict/{experiment}.early.csv", experiment=EXPERIMENTS),
    *expand(
        "results/predict/{experiment}.early.{ext}", experiment=EXPERIMENTS, ext=("pdf", "png")
    ),
]


rule predict:
    input:
        features="results/features/{experiment}.parquet",
        code=package_code("stages.predict"),
    output:
        results=report(
            "results/predict/{experiment}.csv",
            caption="../report/predict.rst",
            category="7 Accuracy from weights",
            labels={"experiment": "{experiment}", "kind": "table"},
        ),
        oof="results/predict/{experiment}.oof.csv",
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
        code=package_code("stages.figures", "figures.predict"),
    output:
        pdf="results/predict/{experiment}.pdf",
        png=report(
            "results/predict/{experiment}.png",
            caption="../report/predict_figure.rst",
            category="7 Accuracy from weights",
            labels={"experiment": "{experiment}", "kind": "figure"},
        ),
    log:
        "results/logs/predict_figure/{experiment}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/predict_figure.py"


rule predict_early:
    input:
        features="results/features/{experiment}.parquet",
        code=package_code("stages.predict"),
    output:
        report(
            "results/predict/{experiment}.early.csv",
            caption="../report/predict_early.rst",
            category="7 Accuracy from weights",
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
        code=package_code("stages.figures", "figures.early"),
    output:
        pdf="results/predict/{experiment}.early.pdf",
        png=report(
            "results/predict/{experiment}.early.png",
            caption="../report/predict_early_figure.rst",
            category="7 Accuracy from weights",
            labels={"experiment": "{experiment}", "kind": "early figure"},
        ),
    log:
        "results/logs/predict_early_figure/{experiment}.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/predict_early_figure.py"
