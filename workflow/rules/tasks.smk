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
        gpu=model_gpus,
    params:
        model=model_params,
        settings=task_job_settings,
        steps=lambda wc: config["conditions"][wc.condition],
        languages=lambda wc: [] if wc.selection == "none" else LANGUAGES,
    script:
        "../scripts/generate_task.py"


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
        "../scripts/score_task.py"


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
        "../scripts/plot_task.py"
