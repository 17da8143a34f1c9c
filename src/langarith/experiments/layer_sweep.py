"""The layer sweep of a residual condition: which single layer its ``layers: best`` steps act on.

For one condition (:mod:`langarith.core.conditions`, a residual step with ``layers: best``), every
candidate layer of ``quality.layer_sweep.layers`` is tried alone on the calibration prompts
(disjoint from the forcing prompts, so the choice never sees the outputs it is judged on), all
targets at once in one batched generation. Each output is judged as the calibration judges it
(lid.176 top-1 = target AND repetition ≤ ``max_repetition``), and the best layer is the one with
the highest share of outputs both in the target language and fluent over all (source, target)
pairs; ties go to the higher success rate, then to the earlier layer. One layer for every
target, as the residual-stream literature chooses it per model.

With ``quality.relevance`` configured, every output also gets its relevance
(:mod:`langarith.experiments.relevance`) against the unsteered model's answer to the same plain
calibration prompt (generated in the same job), and each layer its mean relevance and harmonic
steering score: reported beside success, not used for the choice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import polars as pl

from langarith.core.steering_score import harmonic_expr
from langarith.experiments.calibration import judge, sweep_generate
from langarith.experiments.forcing import ForcingRequest
from langarith.experiments.steered_job import SteeredJob


def sweep_layer_outputs(
    model,
    tokenizer,
    reqs: Sequence[ForcingRequest],
    job: SteeredJob,
    layers: Sequence[int],
    generation: Mapping,
) -> pl.DataFrame:
    """Every request at every candidate layer in one batched pass: ``layer, source_lang,
    target_lang, question_idx, prompt, output``."""
    if not job.condition.swept:
        raise ValueError(f"condition {job.condition.name!r} has no step with layers 'best'")
    return sweep_generate(
        model,
        tokenizer,
        reqs,
        [int(layer) for layer in layers],
        lambda layer, req: job.condition.plan(
            req.source, req.target, job.neurons, job.tables, job.alphas, layer
        ),
        ("layer", pl.Int32),
        generation,
    )


def layer_scores(judged: pl.DataFrame) -> pl.DataFrame:
    """Per layer over every output: ``n, success_rate, fluent_rate, success_and_fluent`` and,
    when the outputs have a ``relevance`` column, ``mean_relevance`` and ``steering_score`` (the
    harmonic mean of the success rate and the mean relevance), and ``mean_relevance_margin``
    with a ``relevance_margin`` column."""
    aggregates = [
        pl.len().cast(pl.Int64).alias("n"),
        pl.col("success").mean().alias("success_rate"),
        pl.col("fluent").mean().alias("fluent_rate"),
        pl.col("success_and_fluent").mean().alias("success_and_fluent"),
    ]
    if "relevance" in judged.columns:
        aggregates.append(pl.col("relevance").mean().alias("mean_relevance"))
    if "relevance_margin" in judged.columns:
        aggregates.append(pl.col("relevance_margin").mean().alias("mean_relevance_margin"))
    scores = judged.group_by("layer").agg(aggregates).sort("layer")
    if "relevance" in judged.columns:
        scores = scores.with_columns(
            harmonic_expr(pl.col("success_rate"), pl.col("mean_relevance")).alias("steering_score")
        )
    return scores


def best_layer(scores: pl.DataFrame) -> int:
    """The layer of ``scores`` with the highest success-and-fluent share; ties: the higher
    success rate, then the earlier layer."""
    if scores.height == 0:
        raise ValueError("no layers to choose from")
    rows = scores.to_dicts()
    return int(
        min(rows, key=lambda r: (-r["success_and_fluent"], -r["success_rate"], r["layer"]))["layer"]
    )


def with_relevance(
    judged: pl.DataFrame,
    loaded,
    questions: str,
    settings: Mapping,
    relevance_settings: Mapping,
    condition: str,
) -> pl.DataFrame:
    """``judged`` plus ``relevance`` against the unsteered answers to the plain calibration
    prompts (no instruction), generated here."""
    from langarith.experiments.forcing import requests, unsteered_answers
    from langarith.experiments.relevance import make_encoder, output_relevance
    from langarith.io.prompts import read_questions

    plain = requests(read_questions(questions), settings["sources"], settings["targets"])
    reference = unsteered_answers(
        loaded.model, loaded.tokenizer, plain, settings["generation"], progress=False
    )
    encode = make_encoder(relevance_settings, loaded)
    return output_relevance(judged, reference, encode, f"the unsteered answers ({condition})")


def run_layer_sweep_job(
    model_dir: str,
    model_options: Mapping,
    questions: str,
    job: SteeredJob,
    settings: Mapping,
    langid_model: str | None,
    output_json: str,
    output_table: str,
    meta: Mapping,
    instructions: str | None = None,
) -> dict:
    """The ``sweep_layers`` job: sweep, judge, choose, write the JSON and the per-output table;
    ``job`` is read before the model loads (``read_steered_job``)."""
    from langarith.experiments.forcing import requests
    from langarith.io.atomic import write_parquet, write_text
    from langarith.io.langid import LanguageIdentifier
    from langarith.io.prompts import read_instructions, read_questions
    from langarith.model.loading import load_configured_model

    asked = read_instructions(instructions) if job.condition.instructed and instructions else None
    if job.condition.instructed and asked is None:
        raise ValueError(f"condition {job.condition.name!r} instructs but has no instructions file")
    reqs = requests(read_questions(questions), settings["sources"], settings["targets"], asked)
    loaded = load_configured_model(model_dir, model_options)
    identifier = LanguageIdentifier(langid_model)
    outputs = sweep_layer_outputs(
        loaded.model, loaded.tokenizer, reqs, job, settings["layers"], settings["generation"]
    )
    judged = judge(
        outputs,
        lambda texts: [p.lang for p in identifier.predict(texts)],
        int(settings["ngram"]),
        float(settings["max_repetition"]),
    )
    if settings.get("relevance"):
        judged = with_relevance(
            judged, loaded, questions, settings, settings["relevance"], job.condition.name
        )
    scores = layer_scores(judged)
    result = {
        **dict(meta),
        "condition": job.condition.name,
        "layers": [int(layer) for layer in settings["layers"]],
        "sources": list(settings["sources"]),
        "targets": list(settings["targets"]),
        "ngram": int(settings["ngram"]),
        "max_repetition": float(settings["max_repetition"]),
        "best_layer": best_layer(scores),
        "scores": scores.to_dicts(),
    }
    write_parquet(judged, output_table)
    write_text(json.dumps(result, indent=2) + "\n", output_json)
    return result
