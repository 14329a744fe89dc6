# Imported experiments (config `source:`, docs/import.md): the zoo trained elsewhere is read
# from its folder into results/zoo/<experiment>.h5, in place of train + merge_zoo; the
# analyses then run on it like on a trained zoo. Not a local rule: a large zoo takes
# minutes (about its files' size read once, streamed).


rule import_zoo:
    wildcard_constraints:
        experiment=experiments_pattern(IMPORTED),
    input:
        source=import_inputs,
        code=package_code("stages.zoo_import"),
    output:
        "results/zoo/{experiment}.h5",
    params:
        source=import_source,
    log:
        "results/logs/import_zoo/{experiment}.log",
    benchmark:
        "results/benchmarks/import_zoo/{experiment}.tsv"
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/import_zoo.py"
