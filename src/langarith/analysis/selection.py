"""A neuron selection as a plain table: one row per (language, layer, neuron) assignment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class NeuronTable:
    """The assignments of one selection; a neuron is identified by ``(layer, neuron)`` and may
    belong to several languages. ``languages`` keeps the config order, empty languages included."""

    name: str
    frame: pl.DataFrame  # lang, layer, neuron
    languages: tuple[str, ...]
    n_layers: int
    width: int

    @classmethod
    def read(cls, parquet: str | Path, summary: str | Path, name: str = "") -> NeuronTable:
        from langarith.io import read_json_object, read_parquet

        info = read_json_object(summary)
        frame = read_parquet(parquet, columns=["lang", "layer", "neuron"])
        return cls.from_frame(frame, info["languages"], info["n_layers"], info["width"], name)

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        languages: list[str] | tuple[str, ...],
        n_layers: int,
        width: int,
        name: str = "",
    ) -> NeuronTable:
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
        return cls(name, frame, tuple(languages), int(n_layers), int(width))

    def neuron_sets(self) -> dict[str, set[tuple[int, int]]]:
        """``{lang: {(layer, neuron), …}}`` for every language (possibly empty)."""
        sets: dict[str, set[tuple[int, int]]] = {lang: set() for lang in self.languages}
        for lang, layer, neuron in self.frame.iter_rows():
            sets[lang].add((layer, neuron))
        return sets
