"""A neuron selection in memory, the one type of it: per language and layer, the indices of its
neurons (``masks``), and the same assignments as a table (``frame``), one row per (language,
layer, neuron). A neuron is identified by ``(layer, neuron)`` and may belong to several
languages; ``languages`` keeps the config order, languages without neurons included."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl


@dataclass(frozen=True)
class NeuronSet:
    """Per-language neuron indices: ``masks[lang][layer]`` is an ascending int array."""

    languages: tuple[str, ...]
    n_layers: int
    width: int
    masks: dict[str, list[np.ndarray]]
    name: str = ""

    def count(self, lang: str) -> int:
        return int(sum(len(idx) for idx in self.masks[lang]))

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        languages: Sequence[str],
        n_layers: int,
        width: int,
        name: str = "",
    ) -> NeuronSet:
        """The selection of a ``lang, layer, neuron`` table; ``ValueError`` naming the selection
        for a language that is not listed or a layer outside the model."""
        frame = frame.select(
            pl.col("lang").cast(pl.String),
            pl.col("layer").cast(pl.Int64),
            pl.col("neuron").cast(pl.Int64),
        )
        unknown = set(frame["lang"]) - set(languages)
        if unknown:
            raise ValueError(f"selection {name!r}: languages {sorted(unknown)} are not listed")
        if len(frame) and (frame["layer"].min() < 0 or frame["layer"].max() >= n_layers):
            raise ValueError(f"selection {name!r}: a layer lies outside 0..{n_layers - 1}")
        masks: dict[str, list[np.ndarray]] = {}
        for lang in languages:
            rows = frame.filter(pl.col("lang") == lang)
            layer = rows["layer"].to_numpy()
            neuron = rows["neuron"].to_numpy()
            masks[lang] = [
                np.unique(neuron[layer == i]).astype(np.int64) for i in range(int(n_layers))
            ]
        return cls(tuple(languages), int(n_layers), int(width), masks, name)

    @cached_property
    def frame(self) -> pl.DataFrame:
        """``lang, layer, neuron`` (Int64), one row per assignment, sorted."""
        langs, layers, neurons = [], [], []
        for lang in self.languages:
            for layer, idx in enumerate(self.masks[lang]):
                langs += [lang] * len(idx)
                layers += [layer] * len(idx)
                neurons += [int(j) for j in idx]
        frame = pl.DataFrame(
            {"lang": langs, "layer": layers, "neuron": neurons},
            schema={"lang": pl.String, "layer": pl.Int64, "neuron": pl.Int64},
        )
        return frame.sort(["lang", "layer", "neuron"])

    def neuron_sets(self) -> dict[str, set[tuple[int, int]]]:
        """``{lang: {(layer, neuron), …}}`` for every language (possibly empty)."""
        return {
            lang: {(layer, int(j)) for layer, idx in enumerate(self.masks[lang]) for j in idx}
            for lang in self.languages
        }
