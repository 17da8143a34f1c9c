"""langarith: find and steer the language-specific neurons of a large language model.

The public API, one import away (``import langarith as la``)::

    model = la.load_model("resources/models/gemma3-270m")
    neurons, tables = la.load_pack("results/packs/gemma3-270m/lape-5")
    condition = la.parse_condition("da", [{"op": "set", "lang": "source", "value": 0.0},
                                          {"op": "add", "lang": "target", "value": "mean"}])
    plan = condition.plan("en", "de", neurons, tables)
    la.generate(model.model, model.tokenizer, prompts, [plan])

Layers (the folder says the rule): ``core`` (pure: LAPE, conditions, plans, text quality),
``model`` (torch: loading, sites, hooks, generation), ``io`` (one reader/writer per artifact),
``experiments`` (forcing, tasks, fallback, calibration, logit lens, quality on one steered-job
skeleton), ``analysis`` and ``figures``, ``workflow`` (the Snakemake-aware settings, logging
and GPU slots).
"""

from importlib import import_module

__version__ = "0.1.0"

# name -> module; imported on first use, so that `import langarith.<layer>...` in a light job
# (scoring, figures) never pulls in torch
_API = {
    "Condition": "langarith.core.conditions",
    "build_plan": "langarith.core.conditions",
    "parse_condition": "langarith.core.conditions",
    "NeuronOp": "langarith.core.plans",
    "NeuronSet": "langarith.core.selection",
    "read_tables": "langarith.io.activations",
    "load_pack": "langarith.io.pack",
    "read_selection": "langarith.io.selection",
    "generate": "langarith.model.generation",
    "load_model": "langarith.model.loading",
    "record_corpus": "langarith.model.recording",
    "steer": "langarith.model.steering",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'langarith' has no attribute {name!r}")
    return getattr(import_module(_API[name]), name)


def __dir__() -> list[str]:
    return [*globals(), *_API]
