"""Native prompting: does the model write a language at all when simply asked in it?

A target that no method forces may be one the model barely writes. This job asks each forcing
target its own forcing questions (``Q: <question in X> \\nA:``, the forcing prompt and
generation settings, no steering, no instruction) and judges every answer as the forcing
quality does: lid.176 top-1 = X (``success``) and repetition ≤ ``max_repetition``
(``fluent``). Per language, the share of answers in X and the share in X and fluent say
whether the model writes X at all when asked in it, the reference a steering method's success
towards X is read against (a model that answers Maltese questions in English and is still
forced into "Maltese" writes text with little Maltese content to keep). The
``native_prompting`` job (``quality.native``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from langarith.experiments.calibration import judge
from langarith.experiments.forcing import ForcingRequest, requests, unsteered_answers


def native_requests(
    questions: Mapping[str, Sequence[str]], languages: Sequence[str]
) -> list[ForcingRequest]:
    """Every question of every language in that language: source = target."""
    out: list[ForcingRequest] = []
    for lang in languages:
        out += requests(questions, [lang], [lang])
    return out


def native_scores(judged: pl.DataFrame) -> pl.DataFrame:
    """Per language, in first-seen order: ``n``, ``native_rate`` (answers in the prompt's
    language), ``native_fluent_rate`` (in it and fluent) and ``top_other`` (the most frequent
    other language identified, ``None`` when every answer is in the prompt's language)."""
    rows = []
    for lang in judged["target_lang"].unique(maintain_order=True).to_list():
        part = judged.filter(pl.col("target_lang") == lang)
        others = part.filter(pl.col("pred_lang") != lang)["pred_lang"]
        top_other = None
        if len(others):
            counts = others.value_counts(sort=True)
            best = counts["count"].max()
            top_other = sorted(counts.filter(pl.col("count") == best)["pred_lang"].to_list())[0]
        rows.append(
            {
                "lang": lang,
                "n": part.height,
                "native_rate": float(part["success"].mean()),
                "native_fluent_rate": float(part["success_and_fluent"].mean()),
                "top_other": top_other,
            }
        )
    schema = {
        "lang": pl.String,
        "n": pl.Int64,
        "native_rate": pl.Float64,
        "native_fluent_rate": pl.Float64,
        "top_other": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def run_native_job(
    model_dir: str,
    model_options: Mapping,
    questions: str,
    languages: Sequence[str],
    generation: Mapping,
    langid_model: str | None,
    ngram: int,
    max_repetition: float,
    output_table: str,
    output_scores: str,
) -> pl.DataFrame:
    """The ``native_prompting`` job: generate, judge, write every judged answer
    (``output_table``) and the per-language scores (``output_scores``); returns the scores."""
    from langarith.io.atomic import write_parquet
    from langarith.io.langid import LanguageIdentifier
    from langarith.io.prompts import read_questions
    from langarith.model.loading import load_configured_model

    reqs = native_requests(read_questions(questions), languages)
    identifier = LanguageIdentifier(langid_model)  # before the model: fails early if missing
    loaded = load_configured_model(model_dir, model_options)
    outputs = unsteered_answers(loaded.model, loaded.tokenizer, reqs, generation)
    judged = judge(
        outputs, lambda texts: [p.lang for p in identifier.predict(texts)], ngram, max_repetition
    )
    scores = native_scores(judged)
    write_parquet(judged, output_table)
    write_parquet(scores, output_scores)
    return scores
