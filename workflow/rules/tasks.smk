# Downstream tasks (translation, QA, reading comprehension, NLI), cross-lingual steering, the
# fallback experiment and the steering packs. Settings and input functions: common_tasks.smk.


rule generate_task:
    input:
        unpack(neuron_files),
        unpack(calibration_input),
        model="resources/models/{model}",
        activations=task_activation_files,
    output:
        "results/generations/{model}/{selection}/{task}/{condition}.parquet",
    log:
        "logs/generate/{model}/{selection}/{task}/{condition}.log",
    benchmark:
        "benchmarks/generate/{model}/{selection}/{task}/{condition}.tsv"
    wildcard_constraints:
        task=alternatives(TASKS) or NEVER,
    conda:
        "../../envs/langarith.yaml"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=lambda wc: config["models"][wc.model].get("gpus", 1),
    params:
        model=model_params,
        settings=task_job_settings,
        steps=lambda wc: config["conditions"][wc.condition],
        languages=lambda wc: [] if wc.selection == "none" else LANGUAGES,
    script:
        "../scripts/task_generate.py"


rule score_task:
    input:
        lambda wc: [
            f"results/generations/{wc.model}/{selection}/{wc.task}/{condition}.parquet"
            for selection, condition in task_cells(wc.task)
        ],
    output:
        "results/scores/{model}/{task}.parquet",
    log:
        "logs/score/{model}/{task}.log",
    wildcard_constraints:
        task=alternatives(TASKS) or NEVER,
    conda:
        "../../envs/langarith.yaml"
    params:
        cells=lambda wc: task_cells(wc.task),
        baseline=lambda wc: task_baseline(wc.task),
        langid=lambda wc: wc.task == "translation",
        langid_model=lambda wc: (
            config["langid"].get("model") if wc.task == "translation" else None
        ),
    script:
        "../scripts/task_score.py"


rule plot_task:
    input:
        "results/scores/{model}/{task}.parquet",
    output:
        report(
            "results/figures/{model}/{selection}/{task}/{condition}.png",
            caption="../report/task_heatmap.rst",
            category="Tasks",
            subcategory="{task} · {model}",
            labels={"selection": "{selection}", "condition": "{condition}"},
        ),
    log:
        "logs/plot/{model}/{selection}/{task}/{condition}.log",
    wildcard_constraints:
        task=alternatives(TASKS) or NEVER,
    conda:
        "../../envs/langarith.yaml"
    params:
        metric=lambda wc: TASKS[wc.task]["plot_metric"],
        baseline=lambda wc: task_baseline(wc.task),
    script:
        "../scripts/task_plot.py"


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
        gpu=lambda wc: config["models"][wc.model].get("gpus", 1),
    params:
        model=model_params,
        settings={k: v for k, v in (FALLBACK or {}).items() if k != "selections"},
    script:
        "../scripts/fallback_generate.py"


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
        "../scripts/fallback_summarize.py"


rule export_pack:
    input:
        unpack(pack_calibration_input),
        neurons="results/neurons/{model}/{selection}.parquet",
        summary="results/neurons/{model}/{selection}.json",
        activations=activation_files,
    output:
        directory("results/packs/{model}/{selection}"),
    log:
        "logs/export_pack/{model}/{selection}.log",
    conda:
        "../../envs/langarith.yaml"
    params:
        languages=LANGUAGES,
        metadata=lambda wc: {
            "model": wc.model,
            "model_source": config["models"][wc.model]["source"],
            "selection": wc.selection,
        },
    script:
        "../scripts/task_export_pack.py"
