rule prepare_model:
    output:
        directory("resources/models/{model}"),
    params:
        source=lambda wc: config["models"][wc.model]["source"],
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    script:
        "../scripts/prepare_model.py"
