# Downstream tasks (translation, QA, reading comprehension, NLI), cross-lingual steering and the
# fallback experiment. `task_targets(model)` lists the final outputs of this file for `rule all`.


def task_targets(model):
    return []
