rule prepare_model:
    output:
        directory("resources/models/{model}"),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    localrule: True  # needs the network, which cluster nodes may lack
    conda:
        "../../envs/langarith.yaml"
    params:
        source=lambda wc: config["models"][wc.model]["source"],
    script:
        "../scripts/prepare_model.py"
