"""A claim of the paper as a measurable quantity with a threshold, its verdict, the table.

The verdict is a pure function of the measured value and the threshold: a value that could not
be measured on this run (``None`` or NaN) is "not measurable here", never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import polars as pl

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_MEASURABLE = "not measurable here"
VERDICTS = (HOLDS, DOES_NOT_HOLD, NOT_MEASURABLE)

_COMPARE = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
}


def measurable(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def verdict(value: float | None, threshold: float, op: str = ">") -> str:
    """``holds`` if ``value op threshold``, ``does not hold`` if not, ``not measurable here``
    if there is no value."""
    if op not in _COMPARE:
        raise ValueError(f"comparison {op!r} is not one of {', '.join(_COMPARE)}")
    if not measurable(value):
        return NOT_MEASURABLE
    return HOLDS if _COMPARE[op](float(value), float(threshold)) else DOES_NOT_HOLD


@dataclass(frozen=True)
class Finding:
    """One claim measured on one model (and one selection, where the claim depends on it)."""

    claim_id: str
    claim: str  # the paper's statement
    quantity: str  # what is measured
    op: str
    threshold: float
    value: float | None
    measured: str  # the value in words, with its ingredients
    figure: str  # the figure the value comes from ("" if none)
    selection: str = ""
    condition: str = ""
    note: str = ""

    @property
    def verdict(self) -> str:
        return verdict(self.value, self.threshold, self.op)

    @property
    def rule(self) -> str:
        return f"{self.op} {self.threshold:g}"


FINDINGS_SCHEMA = {
    "model": pl.String,
    "claim_id": pl.String,
    "claim": pl.String,
    "quantity": pl.String,
    "rule": pl.String,
    "threshold": pl.Float64,
    "value": pl.Float64,
    "verdict": pl.String,
    "measured": pl.String,
    "selection": pl.String,
    "condition": pl.String,
    "figure": pl.String,
    "note": pl.String,
}


def findings_frame(model: str, findings: Sequence[Finding]) -> pl.DataFrame:
    rows = []
    for f in findings:
        row = asdict(f)
        row.pop("op")
        value = f.value if measurable(f.value) else None
        rows.append({**row, "model": model, "rule": f.rule, "value": value, "verdict": f.verdict})
    return pl.DataFrame(rows, schema=FINDINGS_SCHEMA)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: float | None) -> str:
    return f"{value:.3g}" if measurable(value) else "—"


def render_markdown(
    model: str,
    main: Sequence[Finding],
    by_selection: dict[str, list[Finding]] | None = None,
    header: str = "",
) -> str:
    """The findings table of one model: one row per claim, plus how the neuron claims fare in
    every other selection (``by_selection[claim_id]``)."""
    lines = [f"# Findings of the paper, measured on `{model}`", ""]
    if header:
        lines += [header, ""]
    lines += [
        "| claim (paper) | measured quantity | rule | value | verdict | measured | figure |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in main:
        where = f" ({f.selection}" + (f", {f.condition}" if f.condition else "") + ")"
        where = where if f.selection else ""
        figure = f"`{f.figure}`" if f.figure else ""
        measured = f.measured + (f" — {f.note}" if f.note else "")
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f.claim,
                    f.quantity + where,
                    f.rule,
                    _value(f.value),
                    f"**{f.verdict}**",
                    measured,
                    figure,
                )
            )
            + " |"
        )
    if by_selection:
        lines += ["", "## Neuron claims in every selection", ""]
        selections = sorted({f.selection for fs in by_selection.values() for f in fs})
        lines.append("| claim | " + " | ".join(selections) + " |")
        lines.append("| --- |" + " --- |" * len(selections))
        for claim_id, fs in by_selection.items():
            cells = {f.selection: f"{_value(f.value)} ({f.verdict})" for f in fs}
            lines.append(
                f"| {claim_id} | " + " | ".join(cells.get(s, "") for s in selections) + " |"
            )
    counts = {v: sum(f.verdict == v for f in main) for v in VERDICTS}
    lines += [
        "",
        f"Summary: {counts[HOLDS]} hold, {counts[DOES_NOT_HOLD]} do not hold, "
        f"{counts[NOT_MEASURABLE]} not measurable here.",
        "",
    ]
    return "\n".join(lines)
