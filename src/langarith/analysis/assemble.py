"""Assemble the findings table of one model from the run's outputs (the ``findings`` job)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from langarith.analysis import claims
from langarith.analysis.findings import Finding, findings_frame, render_markdown
from langarith.core.selection import NeuronSet
from langarith.io.readers import read_parquet
from langarith.io.selection import read_selection

NEURON_CLAIMS = ("deeper-layers", "non-latin-specialised", "related-overlap")


def neuron_findings(table: NeuronSet, settings: Mapping, figures: Mapping[str, str]) -> list:
    """The neuron claims of one selection; ``figures`` maps depth/scripts/overlap to paths."""
    t = settings["thresholds"]
    return [
        claims.deeper_layers(
            table, t["deep_share"], settings["deep_fraction"], figures.get("depth", "")
        ),
        claims.non_latin_specialised(table, t["script_ratio"], figures.get("scripts", "")),
        claims.related_overlap(
            table,
            settings["related_pairs"],
            settings["unrelated_pairs"],
            t["overlap_margin"],
            figures.get("overlap", ""),
        ),
    ]


def forcing_findings(
    scores: pl.DataFrame, settings: Mapping, forcing_figure: Mapping[str, str]
) -> list[Finding]:
    """The forcing claims on the findings selection; ``forcing_figure[condition]`` = path."""
    t = settings["thresholds"]
    selection, condition = settings["selection"], settings["condition"]
    replacement = settings.get("replacement_condition")
    return [
        claims.additive_beats_replacement(
            scores,
            selection,
            settings.get("additive_condition"),
            replacement,
            t["success_margin"],
            forcing_figure.get(replacement or "", ""),
        ),
        claims.residual_beats_neurons(
            scores,
            selection,
            settings.get("residual_condition"),
            condition,
            t["success_margin"],
            forcing_figure.get(settings.get("residual_condition") or "", ""),
        ),
        claims.high_resource_easier(
            scores,
            selection,
            condition,
            settings["high_resource"],
            t["success_margin"],
            forcing_figure.get(condition or "", ""),
        ),
        claims.related_targets_easier(
            scores,
            selection,
            condition,
            t["success_margin"],
            forcing_figure.get(condition or "", ""),
        ),
    ]


def _read_all(paths: Sequence[str]) -> pl.DataFrame | None:
    frames = [read_parquet(p) for p in paths]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _fallback_frame(paths: Sequence[str]) -> pl.DataFrame | None:
    """Per-answer fallback tables if any, else distributions (never both: no double count)."""
    frames = [read_parquet(p) for p in paths]
    per_answer = [f for f in frames if "count" not in f.columns]
    chosen = per_answer or frames
    return pl.concat(chosen, how="diagonal_relaxed") if chosen else None


def run_findings_job(
    model: str,
    selections: Sequence[tuple[str, str, str]],
    forcing_scores: str,
    task_scores: Sequence[str],
    fallback: Sequence[str],
    settings: Mapping,
    figures: Mapping,
    out_markdown: str,
    out_parquet: str,
    header: str = "",
) -> list[Finding]:
    """``selections``: ``(name, parquet, summary)``; ``figures``: ``{"neurons": {selection:
    {depth, scripts, overlap}}, "forcing": {condition: path}, "tasks": path, "fallback": path}``."""
    from langarith.io.atomic import write_parquet, write_text

    by_selection: dict[str, list[Finding]] = {c: [] for c in NEURON_CLAIMS}
    main: list[Finding] = []
    for name, parquet, summary in selections:
        table = read_selection(parquet, summary, name)
        found = neuron_findings(table, settings, figures["neurons"].get(name, {}))
        for f in found:
            by_selection[f.claim_id].append(f)
        if name == settings["selection"]:
            main += found
    main += forcing_findings(read_parquet(forcing_scores), settings, figures["forcing"])
    t = settings["thresholds"]
    main.append(
        claims.cross_lingual_task_gain(
            _read_all(task_scores),
            settings["baseline_conditions"],
            settings["task_metrics"],
            t["task_gain"],
            figures.get("tasks", ""),
        )
    )
    main.append(
        claims.fallback_language(
            _fallback_frame(fallback),
            settings["fallback_source"],
            t["fallback_share"],
            figures.get("fallback", ""),
        )
    )
    others = {c: fs for c, fs in by_selection.items() if len(fs) > 1}
    write_text(render_markdown(model, main, others, header), out_markdown)
    every = main + [f for fs in by_selection.values() for f in fs if f not in main]
    write_parquet(findings_frame(model, every), out_parquet)
    return main
