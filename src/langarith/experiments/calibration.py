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
from langarith.experiments.forcing import ForcingRequest, forcing_generation
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
    rows, plans = [], []
    for alpha in grid:
        scaled = dataclasses.replace(
            job, condition=Condition(job.condition.name, tuple(scaled_steps(job.condition, alpha)))
        )
        for req in reqs:
            rows.append((float(alpha), req.source, req.target, req.question_idx, req.prompt))
            plans.append(scaled.plan(req.source, req.target))
    outputs = steered_generate(
        model, tokenizer, [r[4] for r in rows], plans, forcing_generation(generation), False
    )
    return pl.DataFrame(
        {
            "alpha": [r[0] for r in rows],
            "source_lang": [r[1] for r in rows],
            "target_lang": [r[2] for r in rows],
            "question_idx": [r[3] for r in rows],
            "prompt": [r[4] for r in rows],
            "output": outputs,
        },
        schema={
            "alpha": pl.Float64,
            "source_lang": pl.String,
            "target_lang": pl.String,
            "question_idx": pl.Int32,
            "prompt": pl.String,
            "output": pl.String,
        },
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
    activation_files: Sequence[str],
    neurons: str,
    summary: str,
    condition: str,
    steps: Sequence[Mapping],
    languages: Sequence[str],
    settings: Mapping,
    generation: Mapping,
    langid_model: str | None,
    output_json: str,
    output_table: str,
    meta: Mapping,
) -> dict:
    """The ``calibrate`` job: sweep, judge, choose, write the JSON and the per-output table."""
    from langarith.experiments.forcing import requests
    from langarith.experiments.steered_job import read_steered_job
    from langarith.io.atomic import write_parquet, write_text
    from langarith.io.langid import LanguageIdentifier
    from langarith.io.prompts import read_questions
    from langarith.model.loading import load_configured_model

    job = read_steered_job(
        condition,
        steps,
        neurons,
        summary,
        languages,
        activation_files,
        always_read=True,
        with_alphas=False,  # the sweep sets α itself
    )
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
        "condition": condition,
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
