"""Each claim of the paper (method.md §6.1) as a quantity measured on this run's outputs.

Every function is pure: tables in, a :class:`~langarith.analysis.findings.Finding` out. A claim
whose ingredients are missing (no replacement condition, no task scores, …) gets the value
``None`` and therefore the verdict "not measurable here", with a note saying what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import polars as pl

from langarith.analysis.counts import deep_share, per_language
from langarith.analysis.findings import Finding
from langarith.analysis.overlap import overlap_frame, pair_jaccard
from langarith.analysis.script_groups import compare_scripts
from langarith.core.languages import LANGUAGES
from langarith.core.selection import NeuronSet

# --- neuron claims -------------------------------------------------------------------------


def deeper_layers(
    table: NeuronSet, threshold: float, fraction: float = 1 / 3, figure: str = ""
) -> Finding:
    value = deep_share(table, fraction)
    uniform = int(-(-fraction * table.n_layers // 1)) / table.n_layers
    return Finding(
        claim_id="deeper-layers",
        claim="Language-specific neurons cluster in the deeper layers",
        quantity=(
            "share of language–neuron assignments in the last "
            f"{Fraction(fraction).limit_denominator(12)} of the layers"
        ),
        op=">",
        threshold=threshold,
        value=value,
        measured=(
            f"{value:.1%} of {len(table.frame)} assignments (uniform: {uniform:.0%})"
            if value is not None
            else "the selection is empty"
        ),
        figure=figure,
        selection=table.name,
    )


def non_latin_specialised(table: NeuronSet, threshold: float, figure: str = "") -> Finding:
    cmp = compare_scripts(per_language(table))
    if cmp.ratio is None:
        measured = "needs languages of both script groups with neurons"
    else:
        measured = (
            f"non-Latin ({' '.join(cmp.non_latin)}) {cmp.non_latin_mean:.1f} vs "
            f"Latin ({len(cmp.latin)} languages) {cmp.latin_mean:.1f} neurons per language"
        )
    return Finding(
        claim_id="non-latin-specialised",
        claim="Non-Latin-script languages show greater specialisation (more specific neurons)",
        quantity="mean neurons per non-Latin-script language ÷ mean per Latin-script language",
        op=">",
        threshold=threshold,
        value=cmp.ratio,
        measured=measured,
        figure=figure,
        selection=table.name,
    )


def related_overlap(
    table: NeuronSet,
    related: Sequence[Sequence[str]],
    unrelated: Sequence[Sequence[str]],
    threshold: float = 0.0,
    figure: str = "",
) -> Finding:
    """min Jaccard over related pairs − max Jaccard over unrelated pairs."""
    overlap = overlap_frame(table)

    def scores(pairs: Sequence[Sequence[str]]) -> dict[str, float]:
        out = {}
        for a, b in pairs:
            j = pair_jaccard(overlap, a, b)
            if j is not None:
                out[f"{a}–{b}"] = j
        return out

    rel, unrel = scores(related), scores(unrelated)
    value = min(rel.values()) - max(unrel.values()) if rel and unrel else None
    parts = [f"{k} {v:.3f}" for k, v in {**rel, **unrel}.items()]
    missing = [f"{a}–{b}" for a, b in [*related, *unrelated] if f"{a}–{b}" not in {**rel, **unrel}]
    return Finding(
        claim_id="related-overlap",
        claim="Related languages share more neurons (da–no, es–pt, ru–pl vs en–zh)",
        quantity="min Jaccard of related pairs − max Jaccard of unrelated pairs",
        op=">",
        threshold=threshold,
        value=value,
        measured="Jaccard " + ", ".join(parts) if parts else "no configured pair is measurable",
        figure=figure,
        selection=table.name,
        note=f"pairs not configured here: {' '.join(missing)}" if missing else "",
    )


# --- forcing claims ------------------------------------------------------------------------


def _success_cells(scores: pl.DataFrame, selection: str, condition: str) -> pl.DataFrame:
    return scores.filter(
        (pl.col("selection") == selection)
        & (pl.col("condition") == condition)
        & (pl.col("metric") == "success_rate")
        & (pl.col("test_lang") != "all")
        & (pl.col("steer_lang") != "all")
    )


def _weighted_mean(cells: pl.DataFrame) -> float | None:
    total = cells["n"].sum() if len(cells) else 0
    if not total:
        return None
    return float((cells["value"] * cells["n"]).sum() / total)


def _success_difference(
    base: dict,
    scores: pl.DataFrame,
    selection: str,
    first: str | None,
    second: str | None,
    missing: str,
    note: str,
) -> Finding:
    """The finding ``base`` valued as forcing success of ``first`` − that of ``second`` over
    all cells; not measurable (``missing``, ``note``) when either condition is absent."""
    if not first or not second:
        return Finding(**base, value=None, measured=missing, note=note)
    one = _weighted_mean(_success_cells(scores, selection, first))
    two = _weighted_mean(_success_cells(scores, selection, second))
    if one is None or two is None:
        return Finding(**base, value=None, measured="no forcing scores for these conditions")
    return Finding(
        **base,
        value=one - two,
        condition=f"{first} vs {second}",
        measured=f"{first} {one:.1%}, {second} {two:.1%}",
    )


def additive_beats_replacement(
    scores: pl.DataFrame,
    selection: str,
    additive: str | None,
    replacement: str | None,
    threshold: float,
    figure: str = "",
) -> Finding:
    base = dict(
        claim_id="additive-beats-replacement",
        claim="Additive interventions outperform replacement",
        quantity="forcing success (additive) − forcing success (replacement), all cells",
        op=">",
        threshold=threshold,
        figure=figure,
        selection=selection,
    )
    return _success_difference(
        base,
        scores,
        selection,
        additive,
        replacement,
        "no replacement condition among the forcing conditions",
        "add e.g. deactivate-replace to conditions and forcing.conditions",
    )


def residual_beats_neurons(
    scores: pl.DataFrame,
    selection: str,
    residual: str | None,
    neurons: str | None,
    threshold: float,
    figure: str = "",
) -> Finding:
    """Forcing success of the residual DiffMean condition − that of the neuron condition."""
    base = dict(
        claim_id="residual-beats-neurons",
        claim="Residual-stream DiffMean steers the language better than language neurons "
        "(CLaS-Bench)",
        quantity="forcing success (residual DiffMean) − forcing success (neurons), all cells",
        op=">",
        threshold=threshold,
        figure=figure,
        selection=selection,
    )
    return _success_difference(
        base,
        scores,
        selection,
        residual,
        neurons,
        "no residual-stream condition among the forcing conditions",
        "add a condition with a `site: residual` diffmean step to forcing.conditions",
    )


def _off_diagonal_cells(scores: pl.DataFrame, selection: str, condition: str) -> pl.DataFrame:
    """Forcing success cells whose source and target languages differ."""
    return _success_cells(scores, selection, condition).filter(
        pl.col("test_lang") != pl.col("steer_lang")
    )


def high_resource_easier(
    scores: pl.DataFrame,
    selection: str,
    condition: str | None,
    high_resource: Sequence[str],
    threshold: float,
    figure: str = "",
) -> Finding:
    """Mean success of off-diagonal cells towards high-resource targets − low-resource ones."""
    base = dict(
        claim_id="high-resource-easier",
        claim="Manipulation is more successful for high-resource languages",
        quantity="forcing success towards high-resource − low-resource targets (source ≠ target)",
        op=">",
        threshold=threshold,
        figure=figure,
        selection=selection,
        condition=condition or "",
    )
    if condition is None:
        return Finding(**base, value=None, measured="no steered forcing condition")
    cells = _off_diagonal_cells(scores, selection, condition)
    high = cells.filter(pl.col("steer_lang").is_in(list(high_resource)))
    low = cells.filter(~pl.col("steer_lang").is_in(list(high_resource)))
    hi, lo = _weighted_mean(high), _weighted_mean(low)
    if hi is None or lo is None:
        return Finding(
            **base, value=None, measured="needs both high- and low-resource forcing targets"
        )
    return Finding(
        **base,
        value=hi - lo,
        measured=(
            f"high ({' '.join(sorted(set(high['steer_lang'])))}) {hi:.1%} vs "
            f"low ({' '.join(sorted(set(low['steer_lang'])))}) {lo:.1%}"
        ),
    )


def related_targets_easier(
    scores: pl.DataFrame,
    selection: str,
    condition: str | None,
    threshold: float,
    figure: str = "",
) -> Finding:
    """Success of same-family (source, target) pairs − different-family pairs, off the diagonal;
    the catch-all group "Other" is no family, so its languages only count as different."""
    base = dict(
        claim_id="related-targets-easier",
        claim="Typological similarity improves steering effectiveness",
        quantity="forcing success for same-family − different-family (source, target) pairs",
        op=">",
        threshold=threshold,
        figure=figure,
        selection=selection,
        condition=condition or "",
    )
    if condition is None:
        return Finding(**base, value=None, measured="no steered forcing condition")
    cells = _off_diagonal_cells(scores, selection, condition)

    def family(code: str) -> str | None:
        info = LANGUAGES.get(code)
        return info.family if info and info.family != "Other" else None

    same = [
        family(s) is not None and family(s) == family(t)
        for s, t in zip(cells["test_lang"], cells["steer_lang"])
    ]
    flags = pl.Series("same", same, dtype=pl.Boolean)
    cells = cells.with_columns(flags)
    s, d = (
        _weighted_mean(cells.filter(pl.col("same"))),
        _weighted_mean(cells.filter(~pl.col("same"))),
    )
    if s is None or d is None:
        return Finding(**base, value=None, measured="needs same- and different-family pairs")
    n_same = int(cells["same"].sum())
    return Finding(
        **base,
        value=s - d,
        measured=f"same family {s:.1%} ({n_same} cells) vs different {d:.1%}",
    )


# --- downstream tasks and fallback ---------------------------------------------------------


def cross_lingual_task_gain(
    task_scores: pl.DataFrame | None,
    baseline_conditions: Sequence[str],
    metrics: Mapping[str, str],
    threshold: float,
    figure: str = "",
) -> Finding:
    """Largest gain (metric points) of steering towards another language over the unsteered
    baseline of the same test language, over every task."""
    base = dict(
        claim_id="cross-lingual-steering-helps",
        claim="Cross-lingual neuron steering improves downstream task performance",
        quantity="best gain of a task metric when steering towards another language (points)",
        op=">",
        threshold=threshold,
        figure=figure,
    )
    if task_scores is None or not len(task_scores):
        return Finding(**base, value=None, measured="no task scores in this run")
    rows = task_scores.filter((pl.col("test_lang") != "all") & (pl.col("steer_lang") != "all"))
    best: dict[str, tuple[float, str]] = {}
    n_better = n_cells = 0
    for task in sorted(set(rows["task"])):
        frame = rows.filter(pl.col("task") == task)
        available = sorted(m for m in set(frame["metric"]) if not m.endswith("_improvement"))
        if not available:
            continue
        metric = metrics.get(task) if metrics.get(task) in available else available[0]
        frame = frame.filter(pl.col("metric") == metric)
        baseline = frame.filter(pl.col("condition").is_in(list(baseline_conditions)))
        base_value = dict(baseline.group_by("test_lang").agg(pl.col("value").mean()).iter_rows())
        steered = frame.filter(
            ~pl.col("condition").is_in(list(baseline_conditions))
            & (pl.col("test_lang") != pl.col("steer_lang"))
            & pl.col("test_lang").is_in(list(base_value))
        )
        for test, steer, value in steered.select("test_lang", "steer_lang", "value").iter_rows():
            gain = value - base_value[test]
            n_cells += 1
            n_better += gain > 0
            if task not in best or gain > best[task][0]:
                best[task] = (gain, f"{task} {metric} {gain:+.2f} ({test} steered to {steer})")
    if not best:
        return Finding(
            **base, value=None, measured="no baseline and cross-lingual cells to compare"
        )
    value = max(g for g, _ in best.values())
    return Finding(
        **base,
        value=value,
        measured="; ".join(text for _, text in best.values())
        + f"; {n_better}/{n_cells} cross-lingual cells above baseline",
    )


def fallback_language(
    outputs: pl.DataFrame | None, source: str, threshold: float, figure: str = ""
) -> Finding:
    """When neurons are progressively deactivated, the answers to ``source``-language prompts
    move to another language: the largest share of answers not in ``source`` over the
    deactivation steps (minus the share when nothing is deactivated), and which language they
    fall back to.

    ``outputs``: one row per answer with ``pred_lang`` and a step key (``condition``, or the
    fallback experiment's ``step``/``deactivated``; the step that deactivates nothing is the
    reference, not a candidate), or a distribution with a ``count`` column per language.
    """
    base = dict(
        claim_id="fallback-language",
        claim="Progressive deactivation reveals a fallback language",
        quantity=(
            f"largest share of answers not in {source} over the deactivation steps, minus the "
            "share with nothing deactivated"
        ),
        op=">=",
        threshold=threshold,
        figure=figure,
    )
    if outputs is None or not len(outputs):
        return Finding(**base, value=None, measured="no fallback outputs in this run")
    key = next((k for k in ("condition", "deactivated") if k in outputs.columns), None)
    if key is None or "pred_lang" not in outputs.columns:
        return Finding(**base, value=None, measured="fallback outputs lack a step key/pred_lang")
    weight = pl.col("count") if "count" in outputs.columns else pl.lit(1)
    frame = outputs.select(pl.col(key).cast(pl.String).alias("key"), "pred_lang", weight.alias("w"))
    reference = frame.filter(pl.col("key") == "") if key == "deactivated" else frame.clear()
    steps = frame.filter(pl.col("key") != "") if key == "deactivated" else frame
    best: tuple[float, str, str] | None = None
    for step in steps["key"].unique(maintain_order=True).to_list():
        rows = steps.filter(pl.col("key") == step)
        other = rows.filter(pl.col("pred_lang") != source)
        share = float(other["w"].sum() / rows["w"].sum())
        modal = (
            other.group_by("pred_lang")
            .agg(pl.col("w").sum())
            .sort(["w", "pred_lang"], descending=[True, False])
        )
        lang = str(modal["pred_lang"][0]) if len(modal) else "—"
        if best is None or share > best[0]:
            best = (share, str(step), lang)
    if best is None:
        return Finding(**base, value=None, measured="no deactivation step in the outputs")
    share, step, lang = best
    ref = 0.0
    note = "no reference step: the share is not corrected"
    if len(reference):
        ref = float(
            reference.filter(pl.col("pred_lang") != source)["w"].sum() / reference["w"].sum()
        )
        note = f"with nothing deactivated: {ref:.0%} not in {source}"
    return Finding(
        **base,
        value=share - ref,
        condition=step,
        measured=f"{share:.0%} of answers not in {source} after deactivating {step}, mostly {lang}",
        note=note,
    )
