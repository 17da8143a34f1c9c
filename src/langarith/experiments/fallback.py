"""The fallback experiment (method.md §4.2): deactivate the neurons of more and more languages and
see which language the model falls back to.

Step k deactivates the per-layer union of the neurons of the first k languages of the order
``en, fr, es, it, pt, ru, de, ar, zh, ko, ja`` (those configured), setting them to a constant
c = −1.5 (the anchor's ``negative`` method); step 0 deactivates nothing (the reference). The
prompts are English questions formatted as ``Q: {question}\\nA:`` — the anchor wrote
``Q: {question}A:`` with no newline, which glues the answer cue to the question. Decoding is
greedy with repetition penalty 1.1. Outputs are identified with lid.176; per step we report the
share of each detected language and the modal one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from langarith.core.conditions import Condition, parse_condition
from langarith.core.selection import NeuronSet
from langarith.io.readers import read_parquet
from langarith.io.selection import read_selection  # torch-free: the summary job never loads torch

ORDER = ("en", "fr", "es", "it", "pt", "ru", "de", "ar", "zh", "ko", "ja")
PROMPT_TEMPLATE = "Q: {question}\nA:"
STOP_STRINGS = ("\nQ:", "\nA:")
VALUE = -1.5

GENERATION_SCHEMA = {
    "step": pl.Int32,
    "deactivated": pl.String,
    "added_lang": pl.String,
    "n_neurons": pl.Int64,
    "prompt_idx": pl.Int32,
    "prompt": pl.String,
    "output": pl.String,
}
DISTRIBUTION_SCHEMA = {
    "step": pl.Int32,
    "label": pl.String,
    "deactivated": pl.String,
    "added_lang": pl.String,
    "n_neurons": pl.Int64,
    "pred_lang": pl.String,
    "count": pl.Int64,
    "share": pl.Float64,
    "modal_lang": pl.String,
    "modal_share": pl.Float64,
    "n": pl.Int64,
}


def cumulative_steps(order: Sequence[str]) -> list[tuple[str, ...]]:
    """``[(), (en,), (en, fr), …]``: step 0 deactivates nothing."""
    return [tuple(order[:k]) for k in range(len(order) + 1)]


def deactivation(langs: Sequence[str], value: float) -> Condition:
    """The condition of one step: set the neurons of every one of ``langs`` to ``value``."""
    name = "deactivate-" + ("-".join(langs) or "none")
    return parse_condition(name, [{"op": "set", "lang": lang, "value": value} for lang in langs])


def union_size(neurons: NeuronSet, langs: Sequence[str]) -> int:
    """How many neurons the union of the selections of ``langs`` holds (over all layers)."""
    for lang in langs:
        if lang not in neurons.masks:
            raise ValueError(f"language {lang!r} is not in this neuron selection")
    return int(
        sum(
            len(np.unique(np.concatenate([neurons.masks[lang][layer] for lang in langs])))
            for layer in range(neurons.n_layers)
        )
        if langs
        else 0
    )


def run_fallback(
    model, tokenizer, neurons: NeuronSet, prompts: Sequence[str], settings: Mapping
) -> pl.DataFrame:
    """Generate every prompt under every cumulative step (one batched pass, one plan per row)."""
    from langarith.experiments.steered_job import SteeredJob, steered_generate

    rows, texts_in, plans = [], [], []
    for k, langs in enumerate(cumulative_steps(settings["order"])):
        n_neurons = union_size(neurons, langs)
        plan = SteeredJob(deactivation(langs, settings["value"]), neurons).plan("", "")
        for i, prompt in enumerate(prompts):
            rows.append((k, ",".join(langs), langs[-1] if langs else "", n_neurons, i, prompt))
            texts_in.append(prompt)
            plans.append(plan)
    outputs = steered_generate(model, tokenizer, texts_in, plans, settings["generation"])
    columns = list(GENERATION_SCHEMA)
    data = {name: [row[j] for row in rows] for j, name in enumerate(columns[:-1])}
    data["output"] = outputs
    return pl.DataFrame(data, schema=GENERATION_SCHEMA)


def run_fallback_job(
    model_dir: str,
    model_options: Mapping,
    neurons: str,
    summary: str,
    prompts: str,
    settings: Mapping,
    output: str,
) -> pl.DataFrame:
    """The ``generate_fallback`` job."""
    from langarith.io.atomic import write_parquet
    from langarith.io.prompts import read_prompts
    from langarith.model.loading import load_configured_model

    neuron_set = read_selection(neurons, summary)
    questions = read_prompts(prompts, PROMPT_TEMPLATE, settings.get("max_prompts"))
    loaded = load_configured_model(model_dir, model_options)
    frame = run_fallback(loaded.model, loaded.tokenizer, neuron_set, questions, settings)
    write_parquet(frame, output)
    return frame


def step_label(deactivated: str) -> str:
    if not deactivated:
        return "0: none"
    langs = deactivated.split(",")
    return f"{len(langs)}: +{langs[-1]}" if len(langs) > 1 else f"1: {langs[0]}"


def distribution(langid: pl.DataFrame) -> pl.DataFrame:
    """Per step: count and share of every detected language, and the modal language (ties:
    the alphabetically first)."""
    counts = langid.group_by(["step", "deactivated", "added_lang", "n_neurons", "pred_lang"]).agg(
        pl.len().cast(pl.Int64).alias("count")
    )
    totals = counts.group_by("step").agg(pl.col("count").sum().alias("n"))
    counts = counts.join(totals, on="step").with_columns(
        (pl.col("count") / pl.col("n")).alias("share")
    )
    modal = (
        counts.sort(["step", "count", "pred_lang"], descending=[False, True, False])
        .group_by("step", maintain_order=True)
        .first()
        .select(
            "step", pl.col("pred_lang").alias("modal_lang"), pl.col("share").alias("modal_share")
        )
    )
    out = counts.join(modal, on="step").with_columns(
        pl.col("deactivated").map_elements(step_label, return_dtype=pl.String).alias("label")
    )
    return (
        out.select(list(DISTRIBUTION_SCHEMA))
        .cast(DISTRIBUTION_SCHEMA)
        .sort(["step", "count", "pred_lang"], descending=[False, True, False])
    )


def summarize_fallback(
    generations: str,
    langid_out: str,
    distribution_out: str,
    langid_model: str | None = None,
) -> pl.DataFrame:
    """The ``summarize_fallback`` job: LID of every output and the distribution (its figure:
    :func:`langarith.figures.tasks.fallback_figure`)."""
    from langarith.io.atomic import write_parquet
    from langarith.io.langid import LanguageIdentifier

    frame = read_parquet(generations)
    predictions = LanguageIdentifier(langid_model).predict(frame["output"].to_list())
    langid = frame.with_columns(
        pl.Series("pred_lang", [p.lang for p in predictions], dtype=pl.String),
        pl.Series("pred_prob", [p.prob for p in predictions], dtype=pl.Float64),
    )
    dist = distribution(langid)
    write_parquet(langid, langid_out)
    write_parquet(dist, distribution_out)
    return dist
