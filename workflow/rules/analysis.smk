# Neuron analyses, the findings table, the logit lens and output-quality metrics.
# Settings and input functions: common_analysis.smk.
#
# Always on (cheap): per selection, tables and figures of the neurons; per model, the findings
# table. On when configured: the logit lens (`analysis.logit_lens`), output quality of the
# forcing generations (`quality`), calibration of the additive strength (`quality.calibration`).


rule analyse_neurons:
    input:
        neurons="results/neurons/{model}/{selection}.parquet",
        summary="results/neurons/{model}/{selection}.json",
    output:
        **{
            name: f"results/analysis/{{model}}/{{selection}}/neurons/{name}.parquet"
            for name in NEURON_TABLES
        },
        **neuron_figure_outputs(),
    log:
        "logs/analysis/{model}/{selection}/neurons.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        deep_fraction=ANALYSIS["deep_fraction"],
    script:
        "../scripts/analysis_neurons.py"


rule findings:
    input:
        unpack(findings_inputs),
    output:
        markdown="results/findings/{model}.md",
        table="results/findings/{model}.parquet",
    log:
        "logs/analysis/{model}/findings.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        selections=SELECTIONS,
        settings=ANALYSIS,
        figures=findings_figures,
        header=findings_header,
    script:
        "../scripts/analysis_findings.py"


rule logit_lens:
    input:
        unpack(neuron_files),
        model="resources/models/{model}",
        activations=activation_files,
        questions=str(
            REPO / config["forcing"].get("questions", "resources/prompts/forcing.tsv")
        ),
    output:
        table="results/logit_lens/{model}/{selection}/{condition}.parquet",
        figure=report(
            "results/figures/{model}/{selection}/logit_lens/{condition}.png",
            caption="../report/analysis_logit_lens.rst",
            category="Logit lens",
            subcategory="{model}",
            labels={"selection": "{selection}", "condition": "{condition}"},
        ),
    log:
        "logs/analysis/{model}/{selection}/logit_lens/{condition}.log",
    benchmark:
        "benchmarks/logit_lens/{model}/{selection}/{condition}.tsv"
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=lambda wc: config["models"][wc.model].get("gpus", 1),
    params:
        model=model_params,
        steps=lambda wc: config["conditions"][wc.condition],
        languages=LANGUAGES,
        lens=LENS,
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/analysis_logit_lens.py"


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
        gpu=lambda wc: (
            config["models"][wc.model].get("gpus", 1)
            if QUALITY and QUALITY["perplexity"]
            else 0
        ),
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
        gpu=lambda wc: config["models"][wc.model].get("gpus", 1),
    params:
        model=model_params,
        calibration=CALIBRATION,
        steps=lambda wc: config["conditions"][CALIBRATION["condition"]],
        languages=LANGUAGES,
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/quality_calibrate.py"
