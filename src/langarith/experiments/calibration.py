"""Calibrate the intervention strength: sweep α of the additive step, keep the best grid point.

For one (model, selection) and each target language, the steering condition is run with its
activation strength α set to every value of a grid, on the calibration prompts (disjoint from
the forcing prompts). Each output is scored "success and fluent" (lid.176 top-1 = target AND
repetition ≤ ``max_repetition``, see :mod:`langarith.core.text_quality`), and per target the
grid point with the highest share wins; ties go to the α closest to 1 (the paper's value), then the
smaller α. All grid points run in one batched generation (rows carry their own plans).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence

import polars as pl

from langarith.core.conditions import Condition, Step
from langarith.core.text_quality import add_flags, repetition, units
from langarith.experiments.forcing import ANSWER_SCHEMA, ForcingRequest, forcing_generation
from langarith.experiments.steered_job import SteeredJob, steered_generate

ACTIVATION_OPS = ("add", "diffmean")


def scaled_steps(steps: Sequence[Step], alpha: float) -> list[Step]:
    """``steps`` with the strength of every additive step (``add``, ``diffmean``) set to α."""
    if not any(s.op in ACTIVATION_OPS for s in steps):
        raise ValueError("calibration needs a condition with an additive step (add or diffmean)")
    return [
        dataclasses.replace(s, strength=float(alpha)) if s.op in ACTIVATION_OPS else s
        for s in steps
    ]


def sweep_outputs(
    model,
    tokenizer,
    reqs: Sequence[ForcingRequest],
    job: SteeredJob,
    grid: Sequence[float],
    generation: Mapping,
) -> pl.DataFrame:
    """Generate every request at every α of ``grid`` in one batched pass: ``alpha,
    source_lang, target_lang, question_idx, prompt, output``."""
    scaled = {
        float(alpha): dataclasses.replace(
            job, condition=Condition(job.condition.name, tuple(scaled_steps(job.condition, alpha)))
        )
        for alpha in grid
    }
    return sweep_generate(
        model,
        tokenizer,
        reqs,
        [float(alpha) for alpha in grid],
        lambda alpha, req: scaled[alpha].plan(req.source, req.target),
        ("alpha", pl.Float64),
        generation,
    )


def sweep_generate(
    model,
    tokenizer,
    reqs: Sequence[ForcingRequest],
    points: Sequence,
    plan_of: Callable,
    column: tuple[str, pl.DataType],
    generation: Mapping,
) -> pl.DataFrame:
    """Every request at every grid point in one batched generation (rows carry their own
    plans, ``plan_of(point, request)``): the point's ``column`` (name, dtype), then
    ``source_lang, target_lang, question_idx, prompt, output``."""
    rows = [(point, req) for point in points for req in reqs]
    plans = [plan_of(point, req) for point, req in rows]
    outputs = steered_generate(
        model,
        tokenizer,
        [req.prompt for _, req in rows],
        plans,
        forcing_generation(generation),
        False,
    )
    name, dtype = column
    return pl.DataFrame(
        {
            name: [point for point, _ in rows],
            "source_lang": [req.source for _, req in rows],
            "target_lang": [req.target for _, req in rows],
            "question_idx": [req.question_idx for _, req in rows],
            "prompt": [req.prompt for _, req in rows],
            "output": outputs,
        },
        schema={name: dtype, **ANSWER_SCHEMA},
    )


def judge(
    outputs: pl.DataFrame,
    identify: Callable[[list[str]], list[str]],
    ngram: int,
    max_repetition: float,
) -> pl.DataFrame:
    """``outputs`` plus ``pred_lang``, ``repetition`` and the flags of
    :func:`langarith.core.text_quality.add_flags`."""
    texts = outputs["output"].to_list()
    scored = outputs.with_columns(
        pl.Series("pred_lang", identify(texts), dtype=pl.String),
        pl.Series("repetition", [repetition(units(t), ngram) for t in texts], dtype=pl.Float64),
    )
    return add_flags(scored, max_repetition)


def sweep_scores(judged: pl.DataFrame) -> pl.DataFrame:
    """Per (target, α): ``n, success_rate, fluent_rate, success_and_fluent``."""
    return (
        judged.group_by(["target_lang", "alpha"])
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            pl.col("success").mean().alias("success_rate"),
            pl.col("fluent").mean().alias("fluent_rate"),
            pl.col("success_and_fluent").mean().alias("success_and_fluent"),
        )
        .sort(["target_lang", "alpha"])
    )


def best_alpha(points: Sequence[tuple[float, float]]) -> float:
    """The α of ``(α, score)`` points with the highest score; ties: closest to 1, then smaller."""
    if not points:
        raise ValueError("no grid points to choose from")
    return min(points, key=lambda p: (-p[1], abs(p[0] - 1.0), p[0]))[0]


def choose(scores: pl.DataFrame) -> dict[str, dict]:
    """``{target: {alpha, success_and_fluent, success_rate, fluent_rate, sweep: [...]}}``."""
    out = {}
    for target in scores["target_lang"].unique(maintain_order=True).to_list():
        rows = scores.filter(pl.col("target_lang") == target).sort("alpha")
        sweep = rows.drop("target_lang").to_dicts()
        alpha = best_alpha([(r["alpha"], r["success_and_fluent"]) for r in sweep])
        chosen = next(r for r in sweep if r["alpha"] == alpha)
        out[target] = {
            "alpha": alpha,
            "success_and_fluent": chosen["success_and_fluent"],
            "success_rate": chosen["success_rate"],
            "fluent_rate": chosen["fluent_rate"],
            "sweep": sweep,
        }
    return out


def run_calibration_job(
    model_dir: str,
    model_options: Mapping,
    questions: str,
    job: SteeredJob,
    settings: Mapping,
    generation: Mapping,
    langid_model: str | None,
    output_json: str,
    output_table: str,
    meta: Mapping,
) -> dict:
    """The ``calibrate`` job: sweep, judge, choose, write the JSON and the per-output table;
    ``job`` is read before the model loads, with the selection always and no α
    (``read_steered_job(..., always_read=True, with_alphas=False)``: the sweep sets α)."""
    from langarith.experiments.forcing import requests
    from langarith.io.atomic import write_parquet, write_text
    from langarith.io.langid import LanguageIdentifier
    from langarith.io.prompts import read_questions
    from langarith.model.loading import load_configured_model

    reqs = requests(read_questions(questions), settings["sources"], settings["targets"])
    loaded = load_configured_model(model_dir, model_options)
    identifier = LanguageIdentifier(langid_model)
    outputs = sweep_outputs(loaded.model, loaded.tokenizer, reqs, job, settings["grid"], generation)
    judged = judge(
        outputs,
        lambda texts: [p.lang for p in identifier.predict(texts)],
        int(settings["ngram"]),
        float(settings["max_repetition"]),
    )
    result = {
        **dict(meta),
        "condition": job.condition.name,
        "grid": [float(a) for a in settings["grid"]],
        "sources": list(settings["sources"]),
        "ngram": int(settings["ngram"]),
        "max_repetition": float(settings["max_repetition"]),
        "max_new_tokens": int(generation["max_new_tokens"]),
        "targets": choose(sweep_scores(judged)),
    }
    write_parquet(judged, output_table)
    write_text(json.dumps(result, indent=2) + "\n", output_json)
    return result
