"""Scores of language forcing: success rate and mean target probability per cell and overall."""

from __future__ import annotations

import polars as pl

SCORE_SCHEMA = {
    "model": pl.String,
    "selection": pl.String,
    "task": pl.String,
    "condition": pl.String,
    "test_lang": pl.String,
    "steer_lang": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "n": pl.Int64,
}


def forcing_scores(langid: pl.DataFrame, model: str, selection: str) -> pl.DataFrame:
    """Per (condition, source, target) and overall (``all``): ``success_rate`` (top-1 label ==
    target) and ``target_prob`` (mean lid.176 probability of the target language)."""
    frame = langid.with_columns(
        (pl.col("pred_lang") == pl.col("target_lang")).cast(pl.Float64).alias("success_rate"),
    )
    metrics = ["success_rate", "target_prob"]
    cells = frame.group_by(["condition", "source_lang", "target_lang"]).agg(
        *[pl.col(m).mean() for m in metrics], pl.len().alias("n")
    )
    overall = (
        frame.group_by("condition")
        .agg(*[pl.col(m).mean() for m in metrics], pl.len().alias("n"))
        .with_columns(pl.lit("all").alias("source_lang"), pl.lit("all").alias("target_lang"))
    )
    both = pl.concat([cells, overall.select(cells.columns)])
    long = both.unpivot(
        index=["condition", "source_lang", "target_lang", "n"],
        on=metrics,
        variable_name="metric",
        value_name="value",
    )
    return (
        long.rename({"source_lang": "test_lang", "target_lang": "steer_lang"})
        .with_columns(
            pl.lit(model).alias("model"),
            pl.lit(selection).alias("selection"),
            pl.lit("forcing").alias("task"),
        )
        .select(list(SCORE_SCHEMA))
        .cast(SCORE_SCHEMA)
        .sort(["selection", "condition", "metric", "test_lang", "steer_lang"])
    )
