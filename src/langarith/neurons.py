"""Neuron selections on disk: the LAPE Parquet table, the anchor's mask file and a summary."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch

from langarith.activations import ActivationStats, stack
from langarith.io import atomic_path, write_parquet, write_text
from langarith.lape import LapeSelection, activation_probabilities, language_masks, select

NEURON_SCHEMA = {
    "lang": pl.String,
    "layer": pl.Int16,
    "neuron": pl.Int32,
    "entropy": pl.Float64,
    "p_active": pl.Float64,
    "act_mean": pl.Float64,
}


@dataclass(frozen=True)
class NeuronSet:
    """Per-language neuron indices: ``masks[lang][layer]`` is an ascending int array."""

    languages: tuple[str, ...]
    n_layers: int
    width: int
    masks: dict[str, list[np.ndarray]]

    def count(self, lang: str) -> int:
        return int(sum(len(idx) for idx in self.masks[lang]))

    @classmethod
    def read(cls, parquet: str | Path, summary: str | Path) -> NeuronSet:
        from langarith.io import read_json_object, read_parquet

        info = read_json_object(summary)
        frame = read_parquet(parquet)
        languages = tuple(info["languages"])
        n_layers, width = int(info["n_layers"]), int(info["width"])
        masks: dict[str, list[np.ndarray]] = {}
        for lang in languages:
            rows = frame.filter(pl.col("lang") == lang)
            layer = rows["layer"].to_numpy()
            neuron = rows["neuron"].to_numpy()
            masks[lang] = [np.sort(neuron[layer == i]).astype(np.int64) for i in range(n_layers)]
        return cls(languages=languages, n_layers=n_layers, width=width, masks=masks)


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
    write_parquet(frame, out_parquet)
    # saved through a handle: torch names the archive inside after a path, and a temporary path
    # would make two identical selections differ in bytes
    with atomic_path(out_masks) as tmp, open(tmp, "wb") as handle:
        torch.save([[torch.from_numpy(idx) for idx in per_layer] for per_layer in masks], handle)
    write_text(json.dumps(summary, indent=2) + "\n", out_summary)
    return summary
