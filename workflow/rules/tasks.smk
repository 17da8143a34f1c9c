# Downstream tasks (translation, QA, reading comprehension, NLI), cross-lingual steering, the
# fallback experiment and the steering packs. `task_targets(model)` lists the final outputs of
# this file for `rule all`.

from langarith.fallback import resolve_fallback
from langarith.task_run import (
    TaskConfigError,
    job_settings,
    resolve_task,
    unsteered_condition,
)

try:
    TASKS = {
        name: resolve_task(name, raw, config)
        for name, raw in config.get("tasks", {}).items()
    }
    FALLBACK = (
        resolve_fallback(config["fallback"], config) if "fallback" in config else None
    )
except (TaskConfigError, ValueError) as err:
    sys.exit(f"langarith: config error: {err}")

NEVER = "(?!)"  # a wildcard constraint no value matches (for an empty section)


def task_threads(wildcards):
    """Generation jobs take half the cores: most of a small job is single-threaded start-up
    (imports, tokenizer, weights), so two jobs side by side finish sooner than two in a row.
    """
    return max(1, workflow.cores // 2)


def task_cells(task):
    """(selection, condition) pairs of a task's grid, unsteered conditions once (`none`)."""
    cells = []
    for selection in TASKS[task]["selections"]:
        for condition in TASKS[task]["conditions"]:
            cell = (selection_of(selection, condition), condition)
            if cell not in cells:
                cells.append(cell)
    return cells


def task_figure_cells(task):
    """Cells that get a heatmap: the steered ones (each shows the baseline as its first
    column), or the unsteered ones if the task has nothing else."""
    steered = [cell for cell in task_cells(task) if cell[0] != "none"]
    return steered or task_cells(task)


def task_baseline(task):
    return unsteered_condition(TASKS[task]["conditions"], config["conditions"])


def task_job_settings(wildcards):
    """What a generation job depends on; the baseline not on the steered languages."""
    settings = job_settings(TASKS[wildcards.task])
    if wildcards.selection == "none":
        settings["steer_langs"] = []
    return settings


def pack_calibration_input(wildcards):
    """A calibrated selection's pack carries the chosen α per target language."""
    if CALIBRATION and wildcards.selection in CALIBRATION["selections"]:
        return {
            "calibration": f"results/calibration/{wildcards.model}/{wildcards.selection}.json"
        }
    return {}


def task_activation_files(wildcards):
    """Steered jobs read μ and p; the unsteered baseline needs no statistics."""
    return [] if wildcards.selection == "none" else activation_files(wildcards)


def task_targets(model):
    outputs = []
    for task in TASKS:
        outputs.append(f"results/scores/{model}/{task}.parquet")
        outputs += [
            f"results/figures/{model}/{selection}/{task}/{condition}.png"
            for selection, condition in task_figure_cells(task)
        ]
    if FALLBACK:
        for selection in FALLBACK["selections"]:
            outputs.append(f"results/fallback/{model}/{selection}/languages.parquet")
            outputs.append(f"results/figures/{model}/{selection}/fallback.png")
    for selection in config["forcing"]["selections"]:
        outputs.append(f"results/packs/{model}/{selection}")
    return outputs


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
    threads: task_threads
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
    threads: task_threads
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
    params:
        languages=LANGUAGES,
        metadata=lambda wc: {
            "model": wc.model,
            "model_source": config["models"][wc.model]["source"],
            "selection": wc.selection,
        },
    script:
        "../scripts/task_export_pack.py"
