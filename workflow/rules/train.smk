# Stage 2: train. One job = one chunk of trials of one architecture, trained together as a
# batched ensemble; its HDF5 file holds initial and final weights (and checkpoints), the
# per-epoch metrics and layer dynamics.
# Then the chunks of an experiment are merged into its zoo file.


rule train:
    input:
        data=lambda wc: f"results/data/{train_job(wc).dataset}.npz",
        code=package_code("stages.train"),
    output:
        "results/train/{experiment}/{arch}/{chunk}.h5",
    params:
        job=train_job_dict,
        seed=CONFIG["seed"],
        # only what decides this job's trials: the experiment's `trials` count must not
        # be here, or adding trials would retrain the existing chunks
        settings=lambda wc: experiment_settings_dict(wc.experiment),
    log:
        "results/logs/train/{experiment}/{arch}/{chunk}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{arch}/{chunk}.tsv"
    threads: CONFIG["execution"]["threads"]
    # training jobs go first: they are the long ones, and the short analysis jobs of the
    # experiments already trained fill the cores that the last of them leaves free
    priority: 10
    resources:
        gpu=training_gpus,
        mem_mb=CONFIG["execution"]["mem_mb"],
        runtime=CONFIG["execution"]["runtime"],
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/train.py"


rule merge_zoo:
    wildcard_constraints:
        experiment=experiments_pattern(TRAINED),
    input:
        jobs=job_files,
        code=package_code("stages.zoo"),
    output:
        "results/zoo/{experiment}.h5",
    params:
        experiment=lambda wc: canonical(EXPERIMENTS[wc.experiment]),
    log:
        "results/logs/merge_zoo/{experiment}.log",
    benchmark:
        "results/benchmarks/merge_zoo/{experiment}.tsv"
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/merge_zoo.py"
