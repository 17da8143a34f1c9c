"""The steering score of CLaS-Bench: the harmonic mean of language-forcing success and output
relevance, so a method scores high only when it both switches the language and keeps the answer
on its question.

``H = 2·S·R / (S + R)`` for a success rate ``S`` and a mean relevance ``R``, both in [0, 1];
``H = 0`` when ``S = R = 0`` (the limit along any path, and the only value that keeps "nothing
forced, nothing kept" at the bottom of the scale). It is computed from the aggregate ``S`` and
``R`` of a cell (one condition, one target language or all of them), as the benchmark does, not
averaged over outputs.
"""

from __future__ import annotations

import math

import polars as pl


def harmonic_score(success: float | None, relevance: float | None) -> float | None:
    """``2·S·R / (S + R)``, 0 when both are 0, ``None`` when either is missing."""
    if success is None or relevance is None:
        return None
    for name, value in (("success", success), ("relevance", relevance)):
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"harmonic_score: {name} {value!r} is outside [0, 1]")
    total = success + relevance
    return 0.0 if total == 0 else 2.0 * success * relevance / total


def harmonic_expr(success: pl.Expr, relevance: pl.Expr) -> pl.Expr:
    """:func:`harmonic_score` as a polars expression (null where either input is null)."""
    total = success + relevance
    return (
        pl.when(total > 0)
        .then(2.0 * success * relevance / total)
        .otherwise(pl.when(total.is_not_null()).then(0.0))
    )
