# Activation statistics per (model, language), in one job or in shards
# (recording.shards; SHARDS and RECORDING are set in common.smk).

if SHARDS == 1:

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
        threads: RECORDING.get("threads", 1)
        resources:
            gpu=model_gpus,
        params:
            model=model_params,
            recording=RECORDING,
            shard=[1, 1],
        script:
            "../scripts/record_activations.py"

else:

    # One job per shard, each written atomically: a killed run loses only the shards in
    # flight, and rerunning records only the shard files that are missing.
    rule record_activations_shard:
        input:
            model="resources/models/{model}",
            corpus=f"resources/corpus/{CORPUS}/{{lang}}.parquet",
        output:
            "results/activations/{model}/shards/{lang}/{shard}-of-{shards}.parquet",
        log:
            "logs/record_activations_shard/{model}/{lang}/{shard}-of-{shards}.log",
        benchmark:
            "benchmarks/record_activations_shard/{model}/{lang}/{shard}-of-{shards}.tsv"
        wildcard_constraints:
            shard=r"[1-9][0-9]*",
            shards=r"[1-9][0-9]*",
        conda:
            "../../envs/langarith.yaml"
        threads: RECORDING.get("threads", 1)
        resources:
            gpu=model_gpus,
        params:
            model=model_params,
            recording=RECORDING,
            shard=lambda wc: [int(wc.shard), int(wc.shards)],
        script:
            "../scripts/record_activations.py"

    # The exact sum of a language's shards, at the path a single job writes.
    rule reduce_activations:
        input:
            expand(
                "results/activations/{{model}}/shards/{{lang}}/{shard}-of-{shards}.parquet",
                shard=range(1, SHARDS + 1),
                shards=SHARDS,
            ),
        output:
            "results/activations/{model}/{lang}.parquet",
        log:
            "logs/reduce_activations/{model}/{lang}.log",
        localrule: True  # reads n small files and adds them
        conda:
            "../../envs/langarith.yaml"
        script:
            "../scripts/reduce_activations.py"
