"""The language × language overlap of a selection: shared neurons and Jaccard index."""

from __future__ import annotations

import numpy as np
import polars as pl

from langarith.core.languages import by_family
from langarith.core.selection import NeuronSet


def overlap_matrix(
    table: NeuronSet, order: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """``(languages, M)`` with ``M[i, j]`` = neurons shared by languages i and j, so the diagonal
    is each language's set size; languages ordered by family unless ``order`` is given."""
    langs = list(order) if order is not None else by_family(list(table.languages))
    sets = table.neuron_sets()
    matrix = np.zeros((len(langs), len(langs)), dtype=np.int64)
    for i, a in enumerate(langs):
        for j in range(i, len(langs)):
            shared = len(sets[a] & sets[langs[j]])
            matrix[i, j] = matrix[j, i] = shared
    return langs, matrix


def jaccard_matrix(matrix: np.ndarray) -> np.ndarray:
    """Jaccard index ``|A∩B| / |A∪B|`` from an overlap matrix (0 where both sets are empty)."""
    sizes = np.diag(matrix).astype(np.float64)
    union = sizes[:, None] + sizes[None, :] - matrix
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, matrix / union, 0.0)


def overlap_frame(table: NeuronSet) -> pl.DataFrame:
    """Long form of the matrix: ``lang_a, lang_b, shared, jaccard`` (family order, both halves)."""
    langs, matrix = overlap_matrix(table)
    jac = jaccard_matrix(matrix)
    n = len(langs)
    return pl.DataFrame(
        {
            "lang_a": [a for a in langs for _ in range(n)],
            "lang_b": langs * n,
            "shared": matrix.reshape(-1),
            "jaccard": jac.reshape(-1),
        },
        schema={
            "lang_a": pl.String,
            "lang_b": pl.String,
            "shared": pl.Int64,
            "jaccard": pl.Float64,
        },
    )


def pair_jaccard(overlap: pl.DataFrame, a: str, b: str) -> float | None:
    """Jaccard index of one pair from :func:`overlap_frame`; ``None`` if a language is absent."""
    row = overlap.filter((pl.col("lang_a") == a) & (pl.col("lang_b") == b))
    return float(row["jaccard"][0]) if len(row) else None
