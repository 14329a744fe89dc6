# Stage 5: the paper's claims tested on the features tables of every experiment, with
# statistics (docs/claims.md), and a summary figure of the verdicts.

CLAIMS_FILES = [
    "results/claims/claims.csv",
    "results/claims/claims.md",
    "results/claims/claims.pdf",
    "results/claims/claims.png",
]


rule claims:
    input:
        features=FEATURE_FILES,
        # claim 9 reads the reconstruction tables (none where reconstruct is disabled)
        reconstruct=RECONSTRUCT_TABLES,
        code=package_code("stages.claims"),
    output:
        csv=report(
            "results/claims/claims.csv",
            caption="../report/claims.rst",
            category=SECTIONS["claims"],
            labels={"kind": "table"},
        ),
        md="results/claims/claims.md",
    params:
        claims=canonical(CONFIG["claims"]),
        accuracy=CONFIG["groups"]["accuracy"],
        claim_ratio=CONFIG["reconstruct"]["claim_ratio"],
    log:
        "results/logs/claims/claims.log",
    benchmark:
        "results/benchmarks/claims/claims.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/claims.py"


rule claims_figure:
    input:
        claims="results/claims/claims.csv",
        code=registry_figure_code("claims"),
    output:
        pdf=f"{BY_NAME['claims'].path}.pdf",
        png=report(
            f"{BY_NAME['claims'].path}.png",
            caption="../report/claims_figure.rst",
            category=BY_NAME["claims"].section,
            labels={"kind": "figure"},
        ),
    params:
        module=BY_NAME["claims"].module,
        number=BY_NAME["claims"].number,
    log:
        "results/logs/claims/claims_figure.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/weightzoo.yaml"
    script:
        "../scripts/figure.py"
