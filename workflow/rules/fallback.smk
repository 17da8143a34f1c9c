# The fallback experiment (method.md §4.2): progressive deactivation, language ID per step.


rule generate_fallback:
    input:
        model="resources/models/{model}",
        neurons="results/neurons/{model}/{selection}.parquet",
        summary="results/neurons/{model}/{selection}.json",
        prompts=str(REPO / FALLBACK["prompts"]) if FALLBACK else [],
    output:
        "results/fallback/{model}/{selection}/generations.parquet",
    log:
        "logs/generate_fallback/{model}/{selection}.log",
    benchmark:
        "benchmarks/generate_fallback/{model}/{selection}.tsv"
    wildcard_constraints:
        selection=alternatives(FALLBACK["selections"]) if FALLBACK else NEVER,
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=model_gpus,
    params:
        model=model_params,
        settings={k: v for k, v in (FALLBACK or {}).items() if k != "selections"},
    script:
        "../scripts/generate_fallback.py"


rule summarize_fallback:
    input:
        "results/fallback/{model}/{selection}/generations.parquet",
    output:
        langid="results/fallback/{model}/{selection}/langid.parquet",
        languages="results/fallback/{model}/{selection}/languages.parquet",
        figure=report(
            "results/figures/{model}/{selection}/fallback.png",
            caption="../report/fallback.rst",
            category="Fallback",
            subcategory="{model}",
            labels={"selection": "{selection}"},
        ),
    log:
        "logs/summarize_fallback/{model}/{selection}.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/summarize_fallback.py"
