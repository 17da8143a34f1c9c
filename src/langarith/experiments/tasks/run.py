"""Downstream tasks under steering (method.md §4.3-4.7): jobs and scores (settings:
:mod:`langarith.workflow.settings.tasks`).

One job = (model, selection, task, condition): the model is loaded once and every cell
(test language × steered language) of the task runs in one batched pass. A condition's steps
resolve ``lang: source`` to the test language and ``lang: target`` to the steered language; a
condition without steps (the baseline) runs once per test language, under selection ``none``,
with steered language ``none``.

Generations follow the forcing schema (``item_id, task, source_lang, target_lang, condition,
prompt, output``; ``source_lang`` = test language, ``target_lang`` = steered language) plus
``references`` and ``reference_lang``; multiple-choice tasks (reading, nli) add ``options``,
``choices``, ``gold_index``, ``option_logliks`` (Σ log p(option | prompt) under the same plan),
``loglik_pred`` (their argmax) and ``parsed_pred`` (the option the generated answer names).
``generation.positions`` (``all``, ``prompt`` or ``generated``) scopes the plans in both, as in
forcing (:mod:`langarith.model.steering`; for the log-likelihood the option plays the generated
text).

Scores follow the scores schema (``model, selection, task, condition, test_lang, steer_lang,
metric, value, n``) with the task layer's metrics (percent, 0-100) and, for every steered cell,
``<metric>_improvement`` = value − the baseline's value for the same test language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from langarith.experiments.tasks import TaskItem, get_task

if TYPE_CHECKING:  # torch-free at import: the scoring jobs never load torch
    from langarith.core.plans import Plan
    from langarith.experiments.steered_job import SteeredJob

UNSTEERED = "none"
MULTIPLE_CHOICE = ("reading", "nli")
# Metrics per task, in the order they are reported; the first is the default heatmap metric.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "translation": (
        "bleu",
        "chrf++",
        "anchor_sentence_bleu",
        "lid_reference_rate",
        "lid_steer_rate",
    ),
    "qa": ("f1", "exact_match"),
    "reading": ("accuracy", "accuracy_loglik", "parse_rate"),
    "nli": (
        "accuracy",
        "accuracy_loglik",
        "parse_rate",
        "entailment",
        "neutral",
        "contradiction",
    ),
}

BASE_SCHEMA = {
    "item_id": pl.String,
    "task": pl.String,
    "source_lang": pl.String,
    "target_lang": pl.String,
    "condition": pl.String,
    "prompt": pl.String,
    "output": pl.String,
    "references": pl.List(pl.String),
    "reference_lang": pl.String,
}
CHOICE_SCHEMA = {
    "options": pl.List(pl.String),
    "choices": pl.List(pl.String),
    "gold_index": pl.Int32,
    "option_logliks": pl.List(pl.Float64),
    "loglik_pred": pl.Int32,
    "parsed_pred": pl.Int32,
}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class TaskRequest:
    item: TaskItem
    steer_lang: str
    plan: Plan


def load_task_items(task: str, source: Mapping, langs: Sequence[str], max_items) -> dict:
    """``{test language: items}`` in config order."""
    module = get_task(task)
    return {lang: module.load_items(dict(source), lang, max_items) for lang in langs}


def task_requests(
    items: Mapping[str, Sequence[TaskItem]], steer_langs: Sequence[str], job: SteeredJob
) -> list[TaskRequest]:
    """Every (test language, steered language, item) of the grid; one steered language
    (``none``) if the job's condition is unsteered. ``lang: source`` is the test language,
    ``lang: target`` the steered language."""
    out = []
    for test_lang, lang_items in items.items():
        for steer_lang in [UNSTEERED] if job.condition.unsteered else steer_langs:
            plan = job.plan(test_lang, steer_lang)
            out += [TaskRequest(item, steer_lang, plan) for item in lang_items]
    return out


def run_requests(
    model,
    tokenizer,
    task: str,
    condition: str,
    reqs: Sequence[TaskRequest],
    generation: Mapping,
    loglik_batch_size: int = 16,
    progress: bool = True,
) -> pl.DataFrame:
    """Generate (and, for multiple choice, score the options of) every request; identical
    (prompt, plan) requests run once."""
    from langarith.experiments.steered_job import steered_generate, unique_rows
    from langarith.model.loglik import argmax_option, option_logliks

    generation = {"positions": "all", **dict(generation)}
    outputs = steered_generate(
        model,
        tokenizer,
        [r.item.prompt for r in reqs],
        [r.plan for r in reqs],
        generation,
        progress=progress,
    )
    columns: dict[str, list] = {
        "item_id": [r.item.item_id for r in reqs],
        "task": [task] * len(reqs),
        "source_lang": [r.item.lang for r in reqs],
        "target_lang": [r.steer_lang for r in reqs],
        "condition": [condition] * len(reqs),
        "prompt": [r.item.prompt for r in reqs],
        "output": outputs,
        "references": [list(r.item.references) for r in reqs],
        "reference_lang": [r.item.reference_lang for r in reqs],
    }
    schema = dict(BASE_SCHEMA)
    if task in MULTIPLE_CHOICE:
        firsts, index = unique_rows([r.item.prompt for r in reqs], [r.plan for r in reqs])
        scored = option_logliks(
            model,
            tokenizer,
            [reqs[i].item.prompt for i in firsts],
            [list(reqs[i].item.options) for i in firsts],
            [reqs[i].plan for i in firsts],
            batch_size=loglik_batch_size,
            positions=str(generation["positions"]),
            progress=progress,
        )
        logliks = [scored[i] for i in index]
        module = get_task(task)
        columns |= {
            "options": [list(r.item.options) for r in reqs],
            "choices": [list(r.item.choices) for r in reqs],
            "gold_index": [r.item.gold_index for r in reqs],
            "option_logliks": logliks,
            "loglik_pred": [argmax_option(values) for values in logliks],
            "parsed_pred": [module.predict(r.item, out) for r, out in zip(reqs, outputs)],
        }
        schema |= CHOICE_SCHEMA
    return pl.DataFrame(columns, schema=schema)


def run_task_job(
    model_dir: str,
    model_options: Mapping,
    settings: Mapping,
    job: SteeredJob,
    output: str,
) -> pl.DataFrame:
    """The ``generate_task`` job: one task, one condition (``job``, read before the model
    loads, the α of a calibrated condition per steered language), every (test, steered) cell."""
    from langarith.io.atomic import write_parquet
    from langarith.model.loading import load_configured_model

    items = load_task_items(
        settings["task"], settings["source"], settings["langs"], settings["max_items"]
    )
    reqs = task_requests(items, settings["steer_langs"], job)
    loaded = load_configured_model(model_dir, model_options)
    frame = run_requests(
        loaded.model,
        loaded.tokenizer,
        settings["task"],
        job.condition.name,
        reqs,
        settings["generation"],
        int(settings.get("loglik_batch_size", 16)),  # multiple-choice tasks only
    )
    write_parquet(frame, output)
    return frame


# --------------------------------------------------------------------------- scores


def items_from_frame(frame: pl.DataFrame) -> list[TaskItem]:
    """The task items of generation rows (enough of them to score)."""
    choice = "options" in frame.columns
    items = []
    for row in frame.iter_rows(named=True):
        items.append(
            TaskItem(
                item_id=row["item_id"],
                lang=row["source_lang"],
                prompt=row["prompt"],
                references=tuple(row["references"]),
                options=tuple(row["options"]) if choice else (),
                gold_index=row["gold_index"] if choice else None,
                choices=tuple(row["choices"]) if choice else (),
                target_lang=None
                if row["reference_lang"] == row["source_lang"]
                else row["reference_lang"],
            )
        )
    return items


def cell_metrics(task: str, cell: pl.DataFrame, identifier=None) -> dict[str, float]:
    """The task's metrics (percent) over the rows of one (condition, test, steered) cell."""
    module = get_task(task)
    items = items_from_frame(cell)
    outputs = cell["output"].to_list()
    if task == "translation":
        scores = module.score(items, outputs, spbleu=False)
        if identifier is not None:
            predicted = [p.lang for p in identifier.predict(outputs)]
            steer = cell["target_lang"].to_list()
            refs = cell["reference_lang"].to_list()
            n = len(outputs)
            scores["lid_reference_rate"] = 100.0 * sum(p == r for p, r in zip(predicted, refs)) / n
            scores["lid_steer_rate"] = 100.0 * sum(p == s for p, s in zip(predicted, steer)) / n
        return scores
    scores = module.score(items, outputs)
    if task in MULTIPLE_CHOICE:
        loglik = module.score_loglik(items, cell["option_logliks"].to_list())
        scores["accuracy_loglik"] = loglik["accuracy"]
    return scores


def task_scores(
    parts: Sequence[tuple[str, pl.DataFrame]],
    model: str,
    task: str,
    baseline: str | None = None,
    identifier=None,
) -> pl.DataFrame:
    """Scores of one task from ``(selection, generations)`` parts, plus ``<metric>_improvement``
    rows of every steered cell over the ``baseline`` condition of the same test language."""
    from langarith.experiments.scoring import SCORE_SCHEMA

    rows = []
    for selection, frame in parts:
        keys = frame.select(["condition", "source_lang", "target_lang"]).unique(maintain_order=True)
        for condition, test_lang, steer_lang in keys.iter_rows():
            cell = frame.filter(
                (pl.col("condition") == condition)
                & (pl.col("source_lang") == test_lang)
                & (pl.col("target_lang") == steer_lang)
            )
            for metric, value in cell_metrics(task, cell, identifier).items():
                rows.append(
                    (
                        model,
                        selection,
                        task,
                        condition,
                        test_lang,
                        steer_lang,
                        metric,
                        value,
                        cell.height,
                    )
                )
    scores = pl.DataFrame(rows, schema=SCORE_SCHEMA, orient="row")
    if baseline is not None:
        scores = pl.concat([scores, improvements(scores, baseline)])
    return scores.sort(["selection", "condition", "metric", "test_lang", "steer_lang"])


def improvements(scores: pl.DataFrame, baseline: str) -> pl.DataFrame:
    """``<metric>_improvement`` = steered value − baseline value (same test language, metric)."""
    base = scores.filter(pl.col("condition") == baseline).select(
        "test_lang", "metric", pl.col("value").alias("base_value")
    )
    steered = scores.filter(pl.col("condition") != baseline)
    return (
        steered.join(base, on=["test_lang", "metric"], how="inner")
        .with_columns(
            (pl.col("value") - pl.col("base_value")).alias("value"),
            (pl.col("metric") + "_improvement").alias("metric"),
        )
        .select(scores.columns)
    )
