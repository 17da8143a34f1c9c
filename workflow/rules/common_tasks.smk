# Settings and input functions of tasks.smk (the downstream tasks, the fallback experiment
# and the steering packs). `task_targets(model)` lists the final outputs of tasks.smk for
# `rule all`.

from langarith.task_run import job_settings, unsteered_condition

# Checked and resolved in common.smk (langarith.config.check_everything).
TASKS = SETTINGS.tasks
FALLBACK = SETTINGS.fallback
CALIBRATION = SETTINGS.calibration

NEVER = "(?!)"  # a wildcard constraint no value matches (for an empty section)


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
        return {"calibration": calibration_json(wildcards)}
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
