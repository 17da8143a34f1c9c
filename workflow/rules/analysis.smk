# Neuron analyses, the findings table, the logit lens and output-quality metrics.
# `analysis_targets(model)` lists the final outputs of this file for `rule all`.
#
# Always on (cheap): per selection, tables and figures of the neurons; per model, the findings
# table. On when configured: the logit lens (`analysis.logit_lens`), output quality of the
# forcing generations (`quality`), calibration of the additive strength (`quality.calibration`).

from langarith.analysis.settings import (
    check_analysis,
    resolve_analysis,
    resolve_logit_lens,
)
from langarith.calibration import check_calibrated_uses, resolve_calibration
from langarith.quality import resolve_quality

try:
    check_analysis(config)
    ANALYSIS = resolve_analysis(config)
    LENS = resolve_logit_lens(config)
    QUALITY = resolve_quality(config)
    CALIBRATION = resolve_calibration(config)
    check_calibrated_uses(config, CALIBRATION)
except ValueError as err:
    sys.exit(f"langarith: config error: {err}")

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


rule analyse_neurons:
    input:
        neurons="results/neurons/{model}/{selection}.parquet",
        summary="results/neurons/{model}/{selection}.json",
    output:
        **{
            name: f"results/analysis/{{model}}/{{selection}}/neurons/{name}.parquet"
            for name in NEURON_TABLES
        },
        **neuron_figure_outputs(),
    log:
        "logs/analysis/{model}/{selection}/neurons.log",
    params:
        deep_fraction=ANALYSIS["deep_fraction"],
    script:
        "../scripts/analysis_neurons.py"


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


rule findings:
    input:
        unpack(findings_inputs),
    output:
        markdown="results/findings/{model}.md",
        table="results/findings/{model}.parquet",
    log:
        "logs/analysis/{model}/findings.log",
    params:
        selections=SELECTIONS,
        settings=ANALYSIS,
        figures=findings_figures,
        header=findings_header,
    script:
        "../scripts/analysis_findings.py"


rule logit_lens:
    input:
        unpack(neuron_files),
        model="resources/models/{model}",
        activations=activation_files,
        questions=str(
            REPO / config["forcing"].get("questions", "resources/prompts/forcing.tsv")
        ),
    output:
        table="results/logit_lens/{model}/{selection}/{condition}.parquet",
        figure=report(
            "results/figures/{model}/{selection}/logit_lens/{condition}.png",
            caption="../report/analysis_logit_lens.rst",
            category="Logit lens",
            subcategory="{model}",
            labels={"selection": "{selection}", "condition": "{condition}"},
        ),
    log:
        "logs/analysis/{model}/{selection}/logit_lens/{condition}.log",
    benchmark:
        "benchmarks/logit_lens/{model}/{selection}/{condition}.tsv"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=lambda wc: config["models"][wc.model].get("gpus", 1),
    params:
        model=model_params,
        steps=lambda wc: config["conditions"][wc.condition],
        languages=LANGUAGES,
        lens=LENS,
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/analysis_logit_lens.py"


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
    return inputs


rule quality_forcing:
    input:
        unpack(quality_inputs),
    output:
        "results/quality/{model}/{selection}/forcing/{condition}.parquet",
    log:
        "logs/quality/{model}/{selection}/forcing/{condition}.log",
    benchmark:
        "benchmarks/quality/{model}/{selection}/forcing/{condition}.tsv"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=lambda wc: (
            config["models"][wc.model].get("gpus", 1)
            if QUALITY and QUALITY["perplexity"]
            else 0
        ),
    params:
        quality=QUALITY,
        model=model_params,
    script:
        "../scripts/quality_forcing.py"


rule quality_summary:
    input:
        lambda wc: [
            f"results/quality/{wc.model}/{selection}/forcing/{condition}.parquet"
            for selection, condition in forcing_cells()
        ],
    output:
        table="results/quality/{model}/forcing.parquet",
        figure=report(
            "results/figures/{model}/quality/forcing.png",
            caption="../report/quality_forcing.rst",
            category="Output quality",
            subcategory="{model}",
        ),
    log:
        "logs/quality/{model}/summary.log",
    params:
        cells=forcing_cells(),
        max_repetition=QUALITY["max_repetition"] if QUALITY else None,
    script:
        "../scripts/quality_summary.py"


rule calibrate:
    input:
        unpack(neuron_files),
        model="resources/models/{model}",
        activations=activation_files,
        questions=str(REPO / CALIBRATION["questions"]) if CALIBRATION else [],
    output:
        json="results/calibration/{model}/{selection}.json",
        table="results/calibration/{model}/{selection}.parquet",
        figure=report(
            "results/figures/{model}/{selection}/calibration.png",
            caption="../report/quality_calibration.rst",
            category="Calibration",
            subcategory="{model}",
            labels={"selection": "{selection}"},
        ),
    log:
        "logs/calibrate/{model}/{selection}.log",
    benchmark:
        "benchmarks/calibrate/{model}/{selection}.tsv"
    threads: 64  # capped at --cores by Snakemake
    resources:
        gpu=lambda wc: config["models"][wc.model].get("gpus", 1),
    params:
        model=model_params,
        calibration=CALIBRATION,
        steps=lambda wc: config["conditions"][CALIBRATION["condition"]],
        languages=LANGUAGES,
        langid_model=config["langid"].get("model"),
    script:
        "../scripts/quality_calibrate.py"


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
    if CALIBRATION:
        for selection in CALIBRATION["selections"]:
            targets += [
                f"results/calibration/{model}/{selection}.json",
                f"results/figures/{model}/{selection}/calibration.png",
            ]
    return targets
