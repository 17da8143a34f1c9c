"""A neuron selection in memory: per language and layer, the indices of its neurons."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NeuronSet:
    """Per-language neuron indices: ``masks[lang][layer]`` is an ascending int array."""

    languages: tuple[str, ...]
    n_layers: int
    width: int
    masks: dict[str, list[np.ndarray]]

    def count(self, lang: str) -> int:
        return int(sum(len(idx) for idx in self.masks[lang]))
