# Stage 3b: the features table of each experiment, one row per (trial, layer, state)
# (docs/features.md); claims, the accuracy predictor and Figs 2-4 / 8-10 read it.


rule features:
    input:
        zoo="results/zoo/{experiment}.h5",
        groups="results/groups/{experiment}.csv",
        code=package_code("stages.features"),
    output:
        "results/features/{experiment}.parquet",
    params:
        spectral=CONFIG["features"]["spectral"],
    log:
        "results/logs/features/{experiment}.log",
    benchmark:
        "results/benchmarks/features/{experiment}.tsv"
    # chunks of CHUNK_ELEMENTS weights keep the job near 0.5 GB whatever the zoo's size
    # (docs/features.md, "Speed and memory")
    resources:
        mem_mb=2000,
        runtime=120,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/features.py"
