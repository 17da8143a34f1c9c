"""Language forcing (method.md §4.1): ask the six questions in a source language, steer towards a
target language, and check with language ID whether the answer is in the target language."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from langarith.conditions import LanguageTables, Step, build_plan
from langarith.generate import generate
from langarith.neurons import NeuronSet

PROMPT_TEMPLATE = "Q: {question} \nA:"  # the anchor's format, space before the newline included
STOP_STRINGS = ("\nQ:", "\nA:")

GENERATION_SCHEMA = {
    "item_id": pl.String,
    "task": pl.String,
    "source_lang": pl.String,
    "target_lang": pl.String,
    "condition": pl.String,
    "question_idx": pl.Int32,
    "prompt": pl.String,
    "output": pl.String,
}


def read_questions(path: str | Path) -> dict[str, list[str]]:
    """``{lang: [question 0, …, question 5]}`` from a TSV with ``lang, question_idx, question``."""
    questions: dict[str, dict[int, str]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = {"lang", "question_idx", "question"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            questions.setdefault(row["lang"], {})[int(row["question_idx"])] = row["question"]
    return {lang: [qs[i] for i in sorted(qs)] for lang, qs in questions.items()}


@dataclass(frozen=True)
class ForcingRequest:
    source: str
    target: str
    question_idx: int
    prompt: str


def requests(
    questions: Mapping[str, Sequence[str]], sources: Sequence[str], targets: Sequence[str]
) -> list[ForcingRequest]:
    """Every (source, target, question) of the grid, diagonal included."""
    out = []
    for source in sources:
        if source not in questions:
            raise ValueError(f"no forcing questions for source language {source!r}")
        for target in targets:
            for idx, question in enumerate(questions[source]):
                out.append(
                    ForcingRequest(source, target, idx, PROMPT_TEMPLATE.format(question=question))
                )
    return out


def run_condition(
    model,
    tokenizer,
    reqs: Sequence[ForcingRequest],
    condition: str,
    steps: Sequence[Step],
    neurons: NeuronSet | None,
    tables: LanguageTables | None,
    generation: Mapping,
    alphas: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Generate every request under ``condition``; identical (prompt, plan) pairs run once.
    ``alphas`` (``{target: α}``) serves the calibrated steps."""
    plans = []
    for req in reqs:
        if steps and neurons is None:
            raise ValueError(f"condition {condition!r} has steps but no neuron selection")
        plans.append(
            build_plan(steps, req.source, req.target, neurons, tables, alphas) if steps else []
        )
    unique: dict[tuple, tuple[str, list]] = {}
    keys = [(req.prompt, _plan_key(plan)) for req, plan in zip(reqs, plans)]
    for key, req, plan in zip(keys, reqs, plans):
        unique.setdefault(key, (req.prompt, plan))
    index = {key: i for i, key in enumerate(unique)}
    texts = generate(
        model,
        tokenizer,
        [prompt for prompt, _ in unique.values()],
        [plan for _, plan in unique.values()],
        max_new_tokens=int(generation["max_new_tokens"]),
        repetition_penalty=float(generation["repetition_penalty"]),
        stop_strings=tuple(generation.get("stop_strings", STOP_STRINGS)),
        batch_size=int(generation["batch_size"]),
        positions=str(generation.get("positions", "all")),
    )
    outputs = [texts[index[key]] for key in keys]
    return pl.DataFrame(
        {
            "item_id": [f"{r.source}-{r.target}-{r.question_idx}" for r in reqs],
            "task": ["forcing"] * len(reqs),
            "source_lang": [r.source for r in reqs],
            "target_lang": [r.target for r in reqs],
            "condition": [condition] * len(reqs),
            "question_idx": [r.question_idx for r in reqs],
            "prompt": [r.prompt for r in reqs],
            "output": outputs,
        },
        schema=GENERATION_SCHEMA,
    )


def _plan_key(plan) -> tuple:
    return tuple(
        (op.op, op.layer, op.neurons.tobytes(), op.values.astype("float64").tobytes())
        for op in plan
    )


def run_forcing_job(
    model_dir: str,
    model_options: Mapping,
    questions: str,
    activation_files: Sequence[str],
    neurons: str | None,
    summary: str | None,
    condition: str,
    steps: Sequence[Mapping],
    languages: Sequence[str],
    sources: Sequence[str],
    targets: Sequence[str],
    generation: Mapping,
    output: str,
    calibration: str | None = None,
) -> None:
    """The ``generate_forcing`` job: one condition, every (source, target) pair; a calibrated
    condition reads its α per target from ``calibration`` (the calibration JSON)."""
    from langarith.calibration import condition_alphas
    from langarith.conditions import parse_condition
    from langarith.io import write_parquet
    from langarith.models import load_configured_model

    parsed = parse_condition(condition, steps)
    alphas = condition_alphas(parsed, condition, calibration, targets)
    neuron_set = tables = None
    if parsed:
        neuron_set = NeuronSet.read(neurons, summary)
        tables = LanguageTables.read(languages, activation_files)
    loaded = load_configured_model(model_dir, model_options)
    reqs = requests(read_questions(questions), sources, targets)
    frame = run_condition(
        loaded.model,
        loaded.tokenizer,
        reqs,
        condition,
        parsed,
        neuron_set,
        tables,
        generation,
        alphas,
    )
    write_parquet(frame, output)
