import re
import sys
from pathlib import Path

from langarith.core.conditions import parse_condition
from langarith.workflow.settings import SECTIONS, ConfigError, check_everything
from langarith.workflow.settings.checks import forcing_targets

# Every check of every section, once, before any rule: a bad configuration stops here, before
# any job, with one line naming the key or file. check_everything runs the checks (config
# files, values, names, JSON schemas, what a schema cannot express, the optional sections,
# prompt files, layer counts, the GPU resources), fills in the schemas' defaults (Snakemake's
# validate) and resolves the optional sections into SETTINGS.
_SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"
try:
    SETTINGS = check_everything(
        config,
        _SCHEMAS / "config.schema.yaml",
        {name: _SCHEMAS / f"{name}.schema.yaml" for name in SECTIONS},
        workflow.configfiles,
        root=workflow.basedir,
        workflow=workflow,
    )
except ConfigError as err:
    sys.exit(f"langarith: config error: {err}")
TASKS = SETTINGS.tasks
FALLBACK = SETTINGS.fallback
ANALYSIS = SETTINGS.analysis
LENS = SETTINGS.lens
QUALITY = SETTINGS.quality
RELEVANCE = QUALITY.get("relevance") if QUALITY else None
CALIBRATION = SETTINGS.calibration
LAYER_SWEEP = SETTINGS.layer_sweep
NATIVE = SETTINGS.native

REPO = Path(workflow.basedir)
LANGUAGES = list(config["languages"])
MODELS = list(config["models"])
SELECTIONS = list(config["selections"])
CONDITIONS = list(config["conditions"])
CORPUS = config["corpus"]["name"]


# Shards per language (recording.shards): the shard count is part of the shard files' names,
# not of the parameters, so shard files of another count are never reused.
SHARDS = config["recording"]["shards"]
RECORDING = {k: v for k, v in config["recording"].items() if k != "shards"}


def alternatives(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    model=alternatives(MODELS),
    lang=alternatives(LANGUAGES),
    corpus=re.escape(CORPUS),
    selection=alternatives(SELECTIONS + ["none"]),
    condition=alternatives(CONDITIONS),
    task="forcing",


def model_gpus(wildcards):
    """The `gpu` resource of a job of model `{model}`: `models.<name>.gpus` (default 1)."""
    return int(config["models"][wildcards.model].get("gpus", 1))


def condition_of(name):
    """The typed condition `conditions.<name>` (checked already)."""
    return parse_condition(name, config["conditions"][name])


def is_unsteered(condition):
    """A condition without steps does not depend on any neuron selection."""
    return condition_of(condition).unsteered


def selection_of(selection, condition):
    return "none" if is_unsteered(condition) else selection


def model_params(wildcards):
    model = config["models"][wildcards.model]
    params = {
        "dtype": model.get("dtype", "auto"),
        "trust_remote_code": model.get("trust_remote_code", False),
    }
    # accelerate placement (langarith.model.placement); only when set, so a config without it keeps
    # its params and nothing reruns
    for key in ("device_map", "max_memory", "offload_folder"):
        if model.get(key) is not None:
            params[key] = model[key]
    return params


def activation_files(wildcards):
    return expand(
        "results/activations/{model}/{lang}.parquet",
        model=wildcards.model,
        lang=LANGUAGES,
    )


def neuron_files(wildcards):
    if wildcards.selection == "none":
        return {}
    stem = f"results/neurons/{wildcards.model}/{wildcards.selection}"
    return {"neurons": f"{stem}.parquet", "summary": f"{stem}.json"}


def calibration_json(wildcards):
    """The calibration of a (model, selection): the α chosen per target language."""
    return f"results/calibration/{wildcards.model}/{wildcards.selection}.json"


def calibration_input(wildcards):
    """The calibration JSON a calibrated condition (`strength: calibrated`) takes α from."""
    if not condition_of(wildcards.condition).calibrated:
        return {}
    return {"calibration": calibration_json(wildcards)}


def layer_sweep_json(wildcards):
    """The layer sweep of a (model, selection, condition): the layer of `layers: best`."""
    return f"results/layer_sweep/{wildcards.model}/{wildcards.selection}/{wildcards.condition}.json"


def layer_sweep_input(wildcards):
    """The layer sweep JSON a condition with `layers: best` takes its layer from."""
    if not condition_of(wildcards.condition).swept:
        return {}
    return {"layer_sweep": layer_sweep_json(wildcards)}


def instructions_input(wildcards):
    """The instructions TSV an instructed condition (`op: instruct`) asks for the target in."""
    if not condition_of(wildcards.condition).instructed:
        return {}
    return {"instructions": str(REPO / config["forcing"]["instructions"])}


def forcing_cells():
    """(selection, condition) pairs of the forcing grid, unsteered conditions once."""
    cells = []
    for selection in config["forcing"]["selections"]:
        for condition in config["forcing"]["conditions"]:
            cell = (selection_of(selection, condition), condition)
            if cell not in cells:
                cells.append(cell)
    return cells


def forcing_figures(model):
    return [
        f"results/figures/{model}/{selection}/forcing/{condition}.png"
        for selection, condition in forcing_cells()
    ]


def all_outputs():
    outputs = []
    for model in MODELS:
        outputs += expand(
            "results/neurons/{model}/{selection}.parquet",
            model=model,
            selection=SELECTIONS,
        )
        outputs.append(f"results/scores/{model}/forcing.parquet")
        outputs += forcing_figures(model)
        outputs += task_targets(model)
        outputs += analysis_targets(model)
        outputs += provenance_targets(model)
    return outputs


def provenance_targets(model):
    return [f"results/provenance/{model}.json"]
