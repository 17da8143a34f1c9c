# Fluency beside success (text measures, perplexity) and the strength calibration.


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
        gpu=lambda wc: model_gpus(wc) if QUALITY and QUALITY["perplexity"] else 0,
    params:
        quality=QUALITY,
        model=model_params,
    script:
        "../scripts/quality_forcing.py"


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
