# Settings and input functions of analysis.smk (neuron analyses, the findings table, the
# logit lens, output quality, calibration). `analysis_targets(model)` lists the final
# outputs of analysis.smk for `rule all`.

NEURON_TABLES = ["per_language", "per_layer", "depth", "overlap", "sharing"]
NEURON_FIGURES = ["layers", "depth", "overlap", "scripts", "sharing"]


def neuron_figure(model, selection, name):
    return f"results/figures/{model}/{selection}/neurons/{name}.png"


def neuron_figure_outputs():
    return {
        f"fig_{name}": report(
            f"results/figures/{{model}}/{{selection}}/neurons/{name}.png",
            caption=f"../report/analysis_{name}.rst",
            category="Neurons",
            subcategory="{model}",
            labels={"selection": "{selection}", "figure": name},
        )
        for name in NEURON_FIGURES
    }


def task_score_files(model):
    """Score tables of the downstream tasks among tasks.smk's targets (scores schema)."""
    if "tasks" not in config:
        return []
    prefix = f"results/scores/{model}/"
    return [
        p
        for p in task_targets(model)
        if p.startswith(prefix)
        and p.endswith(".parquet")
        and "/" not in p[len(prefix) :]
        and p != f"{prefix}forcing.parquet"
    ]


def fallback_files(model):
    """The fallback experiment's language tables among tasks.smk's targets (one selection)."""
    if "fallback" not in config:
        return []
    files = [
        p for p in task_targets(model) if "fallback" in p and p.endswith(".parquet")
    ]
    same = [p for p in files if f"/{ANALYSIS['selection']}/" in p]
    return same or files[:1]


def findings_inputs(wildcards):
    model = wildcards.model
    inputs = {
        "neurons": [f"results/neurons/{model}/{s}.parquet" for s in SELECTIONS],
        "summaries": [f"results/neurons/{model}/{s}.json" for s in SELECTIONS],
        "forcing": f"results/scores/{model}/forcing.parquet",
    }
    if task_score_files(model):
        inputs["tasks"] = task_score_files(model)
    if fallback_files(model):
        inputs["fallback"] = fallback_files(model)
    return inputs


def findings_figures(wildcards):
    model, selection = wildcards.model, ANALYSIS["selection"]
    return {
        "neurons": {
            s: {
                name: neuron_figure(model, s, name)
                for name in ("depth", "scripts", "overlap")
            }
            for s in SELECTIONS
        },
        "forcing": {
            c: f"results/figures/{model}/{selection}/forcing/{c}.png"
            for c in config["forcing"]["conditions"]
        },
        "tasks": ", ".join(task_score_files(model)),
        "fallback": ", ".join(fallback_files(model)),
    }


def findings_header(wildcards):
    source = config["models"][wildcards.model]["source"]
    note = (
        "Weights dequantized from a 4-bit GGUF checkpoint: numbers differ from the original model."
        if source["kind"].startswith("gguf")
        else ""
    )
    return (
        f"Corpus `{CORPUS}`, {len(LANGUAGES)} languages, findings selection "
        f"`{ANALYSIS['selection']}`, forcing condition `{ANALYSIS['condition']}`. "
        f"Thresholds: `analysis.thresholds` in the config. {note}"
    ).strip()


def quality_inputs(wildcards):
    model, selection, condition = (
        wildcards.model,
        wildcards.selection,
        wildcards.condition,
    )
    inputs = {
        "langid": f"results/langid/{model}/{selection}/forcing/{condition}.parquet"
    }
    if QUALITY and QUALITY["perplexity"]:
        inputs["model"] = f"resources/models/{model}"
    if RELEVANCE:  # the unsteered answers the outputs are compared with
        reference = RELEVANCE["reference"]
        inputs["reference"] = (
            f"results/generations/{model}/none/forcing/{reference}.parquet"
        )
        if RELEVANCE["encoder"] == "model":
            inputs["model"] = f"resources/models/{model}"
    return inputs


def relevance_validation_inputs(wildcards):
    inputs = {
        "corpus": expand(
            "resources/corpus/{corpus}/{lang}.parquet", corpus=CORPUS, lang=LANGUAGES
        )
    }
    if RELEVANCE["encoder"] == "model":
        inputs["model"] = f"resources/models/{wildcards.model}"
    return inputs


def analysis_targets(model):
    targets = [
        neuron_figure(model, s, name) for s in SELECTIONS for name in NEURON_FIGURES
    ]
    targets += [f"results/findings/{model}.md", f"results/findings/{model}.parquet"]
    if LENS:
        targets.append(
            f"results/figures/{model}/{LENS['selection']}/logit_lens/{LENS['condition']}.png"
        )
    if QUALITY:
        targets += [
            f"results/quality/{model}/forcing.parquet",
            f"results/figures/{model}/quality/forcing.png",
        ]
    if NATIVE:
        targets += [
            f"results/quality/{model}/native.parquet",
            f"results/figures/{model}/quality/native.png",
        ]
    if RELEVANCE and RELEVANCE["validate"]:
        targets += [
            f"results/quality/{model}/relevance_validation.parquet",
            f"results/figures/{model}/quality/relevance_validation.png",
        ]
    if CALIBRATION:
        for selection in CALIBRATION["selections"]:
            targets += [
                f"results/calibration/{model}/{selection}.json",
                f"results/figures/{model}/{selection}/calibration.png",
            ]
    for selection, condition in forcing_cells():
        if condition_of(condition).swept:
            targets.append(
                f"results/figures/{model}/{selection}/layer_sweep/{condition}.png"
            )
    return targets
