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
        "../scripts/analyse_neurons.py"


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
        "../scripts/findings.py"


rule logit_lens:
    input:
        unpack(neuron_files),
        unpack(calibration_input),
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
        gpu=model_gpus,
    params:
        model=model_params,
        steps=lambda wc: config["conditions"][wc.condition],
        languages=LANGUAGES,
        lens=LENS,
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/logit_lens.py"
