rule record_activations:
    input:
        model="resources/models/{model}",
        corpus=f"resources/corpus/{CORPUS}/{{lang}}.parquet",
    output:
        "results/activations/{model}/{lang}.parquet",
    log:
        "logs/record_activations/{model}/{lang}.log",
    benchmark:
        "benchmarks/record_activations/{model}/{lang}.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: config["recording"].get("threads", 1)
    resources:
        gpu=lambda wc: config["models"][wc.model].get("gpus", 1),
    params:
        model=model_params,
        recording=config["recording"],
    script:
        "../scripts/record_activations.py"
