# Stage 1: locate each dataset once and store it as one compact file that training jobs
# load into memory. Local rule: on a cluster, downloads happen on the submit host (compute
# nodes often have no network).


rule prepare_data:
    output:
        "results/data/{dataset}.npz",
    params:
        data=canonical(CONFIG["data"]),
    log:
        "results/logs/prepare_data/{dataset}.log",
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/prepare_data.py"
