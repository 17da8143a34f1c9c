"""How many neurons each language gets, where in depth they sit, and how widely they are shared."""

from __future__ import annotations

import numpy as np
import polars as pl

from langarith.core.languages import LANGUAGES
from langarith.core.selection import NeuronSet


def per_language(table: NeuronSet) -> pl.DataFrame:
    """``lang, n, script, latin, family`` in config order; languages without neurons get 0."""
    counts = dict(table.frame.group_by("lang").len().iter_rows())
    rows = []
    for lang in table.languages:
        info = LANGUAGES.get(lang)
        rows.append(
            {
                "lang": lang,
                "n": int(counts.get(lang, 0)),
                "script": info.script if info else None,
                "latin": info.latin_script if info else None,
                "family": info.family if info else None,
            }
        )
    schema = {
        "lang": pl.String,
        "n": pl.Int64,
        "script": pl.String,
        "latin": pl.Boolean,
        "family": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def per_layer(table: NeuronSet) -> pl.DataFrame:
    """``lang, layer, n``: the full language × layer grid, zeros included."""
    grid = layer_grid(table)
    langs = np.repeat(np.array(table.languages, dtype=object), table.n_layers)
    layers = np.tile(np.arange(table.n_layers), len(table.languages))
    return pl.DataFrame(
        {"lang": langs.tolist(), "layer": layers, "n": grid.reshape(-1)},
        schema={"lang": pl.String, "layer": pl.Int64, "n": pl.Int64},
    )


def layer_grid(table: NeuronSet) -> np.ndarray:
    """``[languages, layers]`` assignment counts."""
    grid = np.zeros((len(table.languages), table.n_layers), dtype=np.int64)
    index = {lang: k for k, lang in enumerate(table.languages)}
    if len(table.frame):
        cells = table.frame.group_by(["lang", "layer"]).len()
        for lang, layer, n in cells.select("lang", "layer", "len").iter_rows():
            grid[index[lang], layer] = n
    return grid


def depth_profile(table: NeuronSet) -> pl.DataFrame:
    """Per layer: ``assignments`` (language–neuron pairs), ``unique`` neurons, their ``share``
    of all assignments and ``relative_depth`` = (layer + 0.5) / layers."""
    grid = layer_grid(table)
    assignments = grid.sum(axis=0)
    unique = np.zeros(table.n_layers, dtype=np.int64)
    if len(table.frame):
        per_layer_unique = table.frame.unique(["layer", "neuron"]).group_by("layer").len()
        for layer, n in per_layer_unique.iter_rows():
            unique[layer] = n
    total = assignments.sum()
    share = assignments / total if total else np.full(table.n_layers, np.nan)
    return pl.DataFrame(
        {
            "layer": np.arange(table.n_layers),
            "assignments": assignments,
            "unique": unique,
            "share": share,
            "relative_depth": (np.arange(table.n_layers) + 0.5) / table.n_layers,
        }
    )


def deep_share(table: NeuronSet, fraction: float = 1 / 3) -> float | None:
    """Share of assignments in the last ``fraction`` of the layers (the last
    ``ceil(fraction · L)`` layers); ``None`` when the selection is empty."""
    grid = layer_grid(table)
    total = grid.sum()
    if total == 0:
        return None
    n_deep = int(np.ceil(fraction * table.n_layers - 1e-9))
    return float(grid[:, table.n_layers - n_deep :].sum() / total)


def sharing(table: NeuronSet) -> pl.DataFrame:
    """``n_languages, n_neurons``: how many selected neurons belong to exactly k languages."""
    if not len(table.frame):
        return pl.DataFrame(schema={"n_languages": pl.Int64, "n_neurons": pl.Int64})
    per_neuron = table.frame.group_by(["layer", "neuron"]).len().rename({"len": "n_languages"})
    return (
        per_neuron.group_by("n_languages")
        .len()
        .rename({"len": "n_neurons"})
        .cast({"n_languages": pl.Int64, "n_neurons": pl.Int64})
        .sort("n_languages")
    )
