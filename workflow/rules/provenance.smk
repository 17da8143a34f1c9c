# Provenance: versions of the software and the model revision behind every result.
# `provenance_targets(model)` lists the final outputs of this file for `rule all`.


def provenance_targets(model):
    return []
