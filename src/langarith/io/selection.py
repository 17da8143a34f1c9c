"""Neuron selections on disk: the LAPE Parquet table, the anchor's mask file and a summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from langarith.core.lape import LapeSelection, activation_probabilities, language_masks, select
from langarith.core.selection import NeuronSet
from langarith.io.activations import ActivationStats, stack
from langarith.io.atomic import atomic_path, write_parquet, write_text

NEURON_SCHEMA = {
    "lang": pl.String,
    "layer": pl.Int16,
    "neuron": pl.Int32,
    "entropy": pl.Float64,
    "p_active": pl.Float64,
    "act_mean": pl.Float64,
}


def read_selection(parquet: str | Path, summary: str | Path, name: str = "") -> NeuronSet:
    """The selection of a LAPE Parquet table and its summary JSON (``name``: its config key,
    for messages and findings)."""
    from langarith.io.readers import read_json_object, read_parquet

    info = read_json_object(summary)
    frame = read_parquet(parquet, columns=["lang", "layer", "neuron"])
    return NeuronSet.from_frame(frame, info["languages"], info["n_layers"], info["width"], name)


def selection_frame(
    selection: LapeSelection, languages: Sequence[str], p: np.ndarray, act_mean: np.ndarray
) -> pl.DataFrame:
    """One row per (language, selected neuron), sorted by language, layer, neuron."""
    parts = []
    for k, lang in enumerate(languages):
        keep = selection.member[k]
        layer, neuron = selection.layer[keep], selection.neuron[keep]
        parts.append(
            pl.DataFrame(
                {
                    "lang": [lang] * int(keep.sum()),
                    "layer": layer,
                    "neuron": neuron,
                    "entropy": selection.entropy[keep],
                    "p_active": p[k, layer, neuron],
                    "act_mean": act_mean[k, layer, neuron],
                },
                schema=NEURON_SCHEMA,
            )
        )
    return pl.concat(parts).sort(["lang", "layer", "neuron"])


def run_lape(
    stats: Sequence[ActivationStats],
    languages: Sequence[str],
    top_rate: float,
    filter_rate: float,
    activation_bar_ratio: float,
    out_parquet: str | Path,
    out_masks: str | Path,
    out_summary: str | Path,
) -> dict:
    """Select neurons from per-language statistics and write the three outputs."""
    n_active, n_tokens, act_mean = stack(stats)
    p = activation_probabilities(n_active, n_tokens)
    selection = select(p, top_rate, filter_rate, activation_bar_ratio)
    n_layers, width = p.shape[1], p.shape[2]
    frame = selection_frame(selection, languages, p, act_mean)
    masks = language_masks(selection, n_layers)
    summary = {
        "languages": list(languages),
        "n_layers": n_layers,
        "width": width,
        "top_rate": top_rate,
        "filter_rate": filter_rate,
        "activation_bar_ratio": activation_bar_ratio,
        "tau_filter": selection.tau_filter,
        "tau_assign": selection.tau_assign,
        "n_requested": selection.n_requested,
        "n_selected": int(len(selection.layer)),
        "n_eligible": selection.n_eligible,
        "n_tokens": {lang: int(n) for lang, n in zip(languages, n_tokens)},
        "neurons_per_language": {
            lang: int(selection.member[k].sum()) for k, lang in enumerate(languages)
        },
    }
    import torch  # only the writer of the anchor's mask file needs torch

    write_parquet(frame, out_parquet)
    # saved through a handle: torch names the archive inside after a path, and a temporary path
    # would make two identical selections differ in bytes
    with atomic_path(out_masks) as tmp, open(tmp, "wb") as handle:
        torch.save([[torch.from_numpy(idx) for idx in per_layer] for per_layer in masks], handle)
    write_text(json.dumps(summary, indent=2) + "\n", out_summary)
    return summary
