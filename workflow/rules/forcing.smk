rule generate_forcing:
    input:
        unpack(neuron_files),
        unpack(calibration_input),
        unpack(instructions_input),
        unpack(layer_sweep_input),
        model="resources/models/{model}",
        activations=activation_files,
        questions=str(
            REPO / config["forcing"].get("questions", "resources/prompts/forcing.tsv")
        ),
    output:
        "results/generations/{model}/{selection}/forcing/{condition}.parquet",
    log:
        "logs/generate/{model}/{selection}/forcing/{condition}.log",
    benchmark:
        "benchmarks/generate/{model}/{selection}/forcing/{condition}.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=model_gpus,
    params:
        model=model_params,
        steps=lambda wc: config["conditions"][wc.condition],
        languages=LANGUAGES,
        sources=config["forcing"]["sources"],
        targets=forcing_targets(config),
        generation=config["forcing"]["generation"],
    script:
        "../scripts/generate_forcing.py"


rule identify_language:
    input:
        "results/generations/{model}/{selection}/{task}/{condition}.parquet",
    output:
        "results/langid/{model}/{selection}/{task}/{condition}.parquet",
    log:
        "logs/identify_language/{model}/{selection}/{task}/{condition}.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/identify_language.py"


rule score_forcing:
    input:
        lambda wc: [
            f"results/langid/{wc.model}/{selection}/forcing/{condition}.parquet"
            for selection, condition in forcing_cells()
        ],
    output:
        "results/scores/{model}/forcing.parquet",
    log:
        "logs/score/{model}/forcing.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        cells=forcing_cells(),
    script:
        "../scripts/score_forcing.py"


rule plot_forcing:
    input:
        "results/scores/{model}/forcing.parquet",
    output:
        report(
            "results/figures/{model}/{selection}/forcing/{condition}.png",
            caption="../report/forcing_heatmap.rst",
            category="Language forcing",
            subcategory="{model}",
            labels={"selection": "{selection}", "condition": "{condition}"},
        ),
    log:
        "logs/plot/{model}/{selection}/forcing/{condition}.log",
    conda:
        "../../envs/langarith.yaml"
    script:
        "../scripts/plot_forcing.py"
