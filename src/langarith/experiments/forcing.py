"""Language forcing (method.md §4.1): ask the six questions in a source language, steer towards a
target language, and check with language ID whether the answer is in the target language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from langarith.experiments.steered_job import SteeredJob, steered_generate
from langarith.io.prompts import Instructions

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


@dataclass(frozen=True)
class ForcingRequest:
    source: str
    target: str
    question_idx: int
    prompt: str


def requests(
    questions: Mapping[str, Sequence[str]],
    sources: Sequence[str],
    targets: Sequence[str],
    instructions: Instructions | None = None,
) -> list[ForcingRequest]:
    """Every (source, target, question) of the grid, diagonal included; with ``instructions``
    (the prompting baseline) each question is followed by the pair's instruction, in the
    question line: ``Q: <question> <instruction> \nA:``."""
    if instructions is not None:
        instructions.require([(source, target) for source in sources for target in targets])
    out = []
    for source in sources:
        if source not in questions:
            raise ValueError(f"no forcing questions for source language {source!r}")
        for target in targets:
            for idx, question in enumerate(questions[source]):
                if instructions is not None:
                    question = f"{question} {instructions[(source, target)]}"
                out.append(
                    ForcingRequest(source, target, idx, PROMPT_TEMPLATE.format(question=question))
                )
    return out


def forcing_generation(generation: Mapping) -> dict:
    """The forcing generation settings with the forcing defaults filled in."""
    return {
        "repetition_penalty": 1.1,
        "stop_strings": list(STOP_STRINGS),
        "positions": "all",
        **dict(generation),
    }


def run_condition(
    model,
    tokenizer,
    reqs: Sequence[ForcingRequest],
    job: SteeredJob,
    generation: Mapping,
) -> pl.DataFrame:
    """Generate every request under the job's condition; identical (prompt, plan) pairs run
    once."""
    plans = [job.plan(req.source, req.target) for req in reqs]
    outputs = steered_generate(
        model, tokenizer, [req.prompt for req in reqs], plans, forcing_generation(generation)
    )
    condition = job.condition.name
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


# an answer frame outside a forcing condition's output (native prompting, the sweeps): the
# generation columns that say which question was asked, in which pair, and what came back
ANSWER_SCHEMA = {
    name: GENERATION_SCHEMA[name]
    for name in ("source_lang", "target_lang", "question_idx", "prompt", "output")
}


def unsteered_answers(
    model, tokenizer, reqs: Sequence[ForcingRequest], generation: Mapping, progress: bool = True
) -> pl.DataFrame:
    """The model's answers to ``reqs`` with no steering (the forcing generation defaults filled
    in): ``source_lang, target_lang, question_idx, prompt, output``."""
    outputs = steered_generate(
        model,
        tokenizer,
        [r.prompt for r in reqs],
        [[] for _ in reqs],
        forcing_generation(generation),
        progress,
    )
    return pl.DataFrame(
        {
            "source_lang": [r.source for r in reqs],
            "target_lang": [r.target for r in reqs],
            "question_idx": [r.question_idx for r in reqs],
            "prompt": [r.prompt for r in reqs],
            "output": outputs,
        },
        schema=ANSWER_SCHEMA,
    )


def run_forcing_job(
    model_dir: str,
    model_options: Mapping,
    questions: str,
    job: SteeredJob,
    sources: Sequence[str],
    targets: Sequence[str],
    generation: Mapping,
    output: str,
    instructions: str | None = None,
) -> None:
    """The ``generate_forcing`` job: one condition (``job``, read before the model loads),
    every (source, target) pair; an instructed condition reads its instructions from
    ``instructions`` (the instructions TSV)."""
    from langarith.io.atomic import write_parquet
    from langarith.io.prompts import read_instructions, read_questions
    from langarith.model.loading import load_configured_model

    asked = None
    if job.condition.instructed:
        if instructions is None:
            name = job.condition.name
            raise ValueError(f"condition {name!r} instructs but has no instructions file")
        asked = read_instructions(instructions)
    reqs = requests(read_questions(questions), sources, targets, asked)
    loaded = load_configured_model(model_dir, model_options)
    write_parquet(run_condition(loaded.model, loaded.tokenizer, reqs, job, generation), output)
