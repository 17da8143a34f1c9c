"""Fluency beside success: repetition, diversity and perplexity of generated outputs.

Text is cut into *units* without a tokenizer, so the measures are the same for every model:
runs of letters/digits are words, every CJK ideograph or kana is a unit of its own (those
scripts do not separate words), and every other non-space character (punctuation, Tibetan
tsheg) is a unit too.

* ``repetition``: the share of n-gram positions whose n-gram occurs more than once in the text
  (0 for a text with no repeated n-gram, 1 for a loop such as "a b a b a b"); 0 without n-grams.
* ``longest_run``: the most consecutive copies of one block of up to ``max_period`` units
  ("la la la la" → 4; a normal sentence → 1; empty → 0).
* ``distinct_n``: distinct n-grams ÷ n-grams (``None`` when the text has no n-gram).

Perplexity under the unsteered model is measured in :mod:`langarith.experiments.quality`, relevance
to the unsteered answer in :mod:`langarith.experiments.relevance`; :func:`summarise` puts them
beside success.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import polars as pl

from langarith.core.steering_score import harmonic_expr

_UNIT = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"  # kana, CJK ideographs: one each
    r"|[^\W_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"  # words
    r"|[^\w\s]|_",  # punctuation and other symbols, one each
)


def units(text: str) -> list[str]:
    """``text`` cut into comparable units (case-folded)."""
    return _UNIT.findall(text.casefold())


def ngrams(seq: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def repetition(seq: Sequence[str], n: int = 3) -> float:
    """Share of n-gram positions whose n-gram occurs more than once."""
    grams = ngrams(seq, n)
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(counts[g] > 1 for g in grams) / len(grams)


def distinct_n(seq: Sequence[str], n: int) -> float | None:
    grams = ngrams(seq, n)
    return len(set(grams)) / len(grams) if grams else None


def longest_run(seq: Sequence[str], max_period: int = 8) -> int:
    """Most consecutive copies of one block of ``1..max_period`` units."""
    if not seq:
        return 0
    best = 1
    for period in range(1, min(max_period, len(seq) // 2) + 1):
        for start in range(period):
            copies = 1
            for pos in range(start + period, len(seq) - period + 1, period):
                if seq[pos : pos + period] == seq[pos - period : pos]:
                    copies += 1
                    best = max(best, copies)
                else:
                    copies = 1
    return best


def text_quality(text: str, n: int = 3, max_period: int = 8) -> dict:
    seq = units(text)
    return {
        "n_units": len(seq),
        "repetition": repetition(seq, n),
        "longest_run": longest_run(seq, max_period),
        "distinct_1": distinct_n(seq, 1),
        "distinct_2": distinct_n(seq, 2),
    }


QUALITY_SCHEMA = {
    "n_units": pl.Int64,
    "repetition": pl.Float64,
    "longest_run": pl.Int64,
    "distinct_1": pl.Float64,
    "distinct_2": pl.Float64,
}


def add_quality(frame: pl.DataFrame, n: int = 3, max_period: int = 8) -> pl.DataFrame:
    """``frame`` (with an ``output`` column) plus the text measures of each output."""
    rows = [text_quality(t, n, max_period) for t in frame["output"].to_list()]
    measures = pl.DataFrame(rows, schema=QUALITY_SCHEMA, orient="row")
    return pl.concat([frame, measures], how="horizontal")


def add_flags(frame: pl.DataFrame, max_repetition: float) -> pl.DataFrame:
    """``success``, ``fluent`` and ``success_and_fluent`` columns (needs ``pred_lang``,
    ``target_lang`` and ``repetition``)."""
    success = pl.col("pred_lang") == pl.col("target_lang")
    is_fluent = pl.col("repetition") <= max_repetition
    return frame.with_columns(
        success.alias("success"),
        is_fluent.alias("fluent"),
        (success & is_fluent).alias("success_and_fluent"),
    )


SUMMARY_KEYS = ["selection", "condition", "target_lang"]


def summarise(frame: pl.DataFrame, max_repetition: float) -> pl.DataFrame:
    """Per (selection, condition, target language) and per (selection, condition) overall
    (``target_lang = all``): shares of successful, fluent and successful-and-fluent outputs,
    mean repetition, mean distinct-2, median perplexity, and (if measured) the mean relevance,
    the mean relevance margin (:mod:`langarith.experiments.relevance`) and the steering score:
    the harmonic mean of the success rate and the mean relevance of the cell
    (:mod:`langarith.core.steering_score`); null where not measured."""
    frame = add_flags(frame, max_repetition)
    ppl = "perplexity" in frame.columns
    rel = "relevance" in frame.columns
    margin = "relevance_margin" in frame.columns
    aggs = [
        pl.len().alias("n"),
        pl.col("success").mean().alias("success_rate"),
        pl.col("fluent").mean().alias("fluent_rate"),
        pl.col("success_and_fluent").mean().alias("success_and_fluent"),
        pl.col("repetition").mean().alias("mean_repetition"),
        pl.col("longest_run").mean().cast(pl.Float64).alias("mean_longest_run"),
        pl.col("distinct_2").mean().alias("mean_distinct_2"),
        (pl.col("perplexity").median() if ppl else pl.lit(None, pl.Float64)).alias(
            "median_perplexity"
        ),
        (pl.col("relevance").mean() if rel else pl.lit(None, pl.Float64)).alias("mean_relevance"),
        (pl.col("relevance_margin").mean() if margin else pl.lit(None, pl.Float64)).alias(
            "mean_relevance_margin"
        ),
    ]
    cells = frame.group_by(SUMMARY_KEYS).agg(*aggs)
    overall = (
        frame.group_by(["selection", "condition"])
        .agg(*aggs)
        .with_columns(pl.lit("all").alias("target_lang"))
        .select(cells.columns)
    )
    return (
        pl.concat([cells, overall])
        .with_columns(pl.lit(max_repetition).alias("max_repetition"))
        .cast(
            {
                "n": pl.Int64,
                "median_perplexity": pl.Float64,
                "mean_relevance": pl.Float64,
                "mean_relevance_margin": pl.Float64,
            }
        )
        .with_columns(
            harmonic_expr(pl.col("success_rate"), pl.col("mean_relevance")).alias("steering_score")
        )
        .sort(SUMMARY_KEYS)
    )
