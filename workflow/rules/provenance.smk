# Provenance: versions of the software and the model revision behind every result.
# `provenance_targets(model)` (common.smk) lists its final outputs for `rule all`.


rule provenance:
    input:
        model="resources/models/{model}",
    output:
        "results/provenance/{model}.json",
    log:
        "logs/provenance/{model}.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        model=lambda wc: config["models"][wc.model],
        # the whole config: a changed value rewrites the record (and its config_sha256)
        config=config,
    script:
        "../scripts/provenance.py"
