"""Latin- versus non-Latin-script languages (Polish is Latin: the anchor's plot got it wrong)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class ScriptComparison:
    latin: tuple[str, ...]
    non_latin: tuple[str, ...]
    latin_mean: float | None
    non_latin_mean: float | None

    @property
    def ratio(self) -> float | None:
        """Mean neurons per non-Latin-script language ÷ mean per Latin-script language."""
        if self.latin_mean is None or self.non_latin_mean is None or self.latin_mean == 0:
            return None
        return self.non_latin_mean / self.latin_mean


def compare_scripts(counts: pl.DataFrame) -> ScriptComparison:
    """From :func:`langarith.analysis.counts.per_language` (columns ``lang, n, latin``);
    languages of unknown script are left out."""
    known = counts.filter(pl.col("latin").is_not_null())
    latin = known.filter(pl.col("latin"))
    other = known.filter(~pl.col("latin"))

    def mean(frame: pl.DataFrame) -> float | None:
        return float(frame["n"].mean()) if len(frame) else None

    return ScriptComparison(
        latin=tuple(latin["lang"]),
        non_latin=tuple(other["lang"]),
        latin_mean=mean(latin),
        non_latin_mean=mean(other),
    )
