# Fluency and relevance beside success (text measures, perplexity, similarity to the unsteered
# answer), the relevance encoder's validation on aligned text, and the strength calibration.


rule quality_forcing:
    input:
        unpack(quality_inputs),
    output:
        "results/quality/{model}/{selection}/forcing/{condition}.parquet",
    log:
        "logs/quality/{model}/{selection}/forcing/{condition}.log",
    benchmark:
        "benchmarks/quality/{model}/{selection}/forcing/{condition}.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=lambda wc: model_gpus(wc) if "model" in quality_inputs(wc) else 0,
    params:
        quality=QUALITY,
        model=model_params,
    script:
        "../scripts/quality_forcing.py"


rule relevance_validation:
    input:
        unpack(relevance_validation_inputs),
    output:
        table="results/quality/{model}/relevance_validation.parquet",
        figure=report(
            "results/figures/{model}/quality/relevance_validation.png",
            caption="../report/quality_relevance_validation.rst",
            category="Output quality",
            subcategory="{model}",
        ),
    log:
        "logs/quality/{model}/relevance_validation.log",
    benchmark:
        "benchmarks/quality/{model}/relevance_validation.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=lambda wc: model_gpus(wc) if RELEVANCE["encoder"] == "model" else 0,
    params:
        relevance=RELEVANCE,
        corpus_kind=config["corpus"]["kind"],
        languages=LANGUAGES,
        model=model_params,
    script:
        "../scripts/relevance_validation.py"


rule native_prompting:
    input:
        model="resources/models/{model}",
        questions=str(
            REPO / config["forcing"].get("questions", "resources/prompts/forcing.tsv")
        ),
    output:
        scores="results/quality/{model}/native.parquet",
        outputs="results/quality/{model}/native_outputs.parquet",
        figure=report(
            "results/figures/{model}/quality/native.png",
            caption="../report/quality_native.rst",
            category="Output quality",
            subcategory="{model}",
        ),
    log:
        "logs/quality/{model}/native.log",
    benchmark:
        "benchmarks/quality/{model}/native.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=model_gpus,
    params:
        model=model_params,
        languages=forcing_targets(config),
        generation=config["forcing"]["generation"],
        langid_model=config["langid"].get("model"),
        judging=NATIVE,
    script:
        "../scripts/native_prompting.py"


rule quality_summary:
    input:
        lambda wc: [
            f"results/quality/{wc.model}/{selection}/forcing/{condition}.parquet"
            for selection, condition in forcing_cells()
        ],
    output:
        table="results/quality/{model}/forcing.parquet",
        figure=report(
            "results/figures/{model}/quality/forcing.png",
            caption="../report/quality_forcing.rst",
            category="Output quality",
            subcategory="{model}",
        ),
    log:
        "logs/quality/{model}/summary.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        cells=forcing_cells(),
        max_repetition=QUALITY["max_repetition"] if QUALITY else None,
    script:
        "../scripts/quality_summary.py"


rule calibrate:
    input:
        unpack(neuron_files),
        model="resources/models/{model}",
        activations=activation_files,
        questions=str(REPO / CALIBRATION["questions"]) if CALIBRATION else [],
    output:
        json="results/calibration/{model}/{selection}.json",
        table="results/calibration/{model}/{selection}.parquet",
        figure=report(
            "results/figures/{model}/{selection}/calibration.png",
            caption="../report/quality_calibration.rst",
            category="Calibration",
            subcategory="{model}",
            labels={"selection": "{selection}"},
        ),
    log:
        "logs/calibrate/{model}/{selection}.log",
    benchmark:
        "benchmarks/calibrate/{model}/{selection}.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=model_gpus,
    params:
        model=model_params,
        calibration=CALIBRATION,
        steps=lambda wc: config["conditions"][CALIBRATION["condition"]],
        languages=LANGUAGES,
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/calibrate.py"


rule sweep_layers:
    input:
        unpack(neuron_files),
        unpack(instructions_input),
        model="resources/models/{model}",
        activations=activation_files,
        questions=str(REPO / LAYER_SWEEP["questions"]) if LAYER_SWEEP else [],
    output:
        json="results/layer_sweep/{model}/{selection}/{condition}.json",
        table="results/layer_sweep/{model}/{selection}/{condition}.parquet",
        figure=report(
            "results/figures/{model}/{selection}/layer_sweep/{condition}.png",
            caption="../report/layer_sweep.rst",
            category="Calibration",
            subcategory="{model}",
            labels={"selection": "{selection}", "condition": "{condition}"},
        ),
    log:
        "logs/sweep_layers/{model}/{selection}/{condition}.log",
    benchmark:
        "benchmarks/sweep_layers/{model}/{selection}/{condition}.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=model_gpus,
    params:
        model=model_params,
        sweep=LAYER_SWEEP,
        steps=lambda wc: config["conditions"][wc.condition],
        languages=LANGUAGES,
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/sweep_layers.py"
