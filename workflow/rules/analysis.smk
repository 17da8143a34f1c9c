# Neuron analyses, the findings table, the logit lens and output-quality metrics.
# `analysis_targets(model)` lists the final outputs of this file for `rule all`.


def analysis_targets(model):
    return []
