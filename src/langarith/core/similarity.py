"""Cosine similarity of text embeddings, and the relevance it gives an output.

A text with no content (an empty output) is embedded as the zero vector; its cosine with
anything is defined as 0, so an empty answer is never relevant. ``relevance`` clips the cosine
to [0, 1] (a harmonic mean needs both of its inputs there; a negative cosine means "unrelated",
as 0 does).
"""

from __future__ import annotations

import numpy as np


def _unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"expected a [n, dim] matrix of embeddings, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[len(a), len(b)]`` cosines between the rows of ``a`` and of ``b`` (0 for a zero row)."""
    return _unit(a) @ _unit(b).T


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of ``a[i]`` with ``b[i]`` for every row ``i`` (0 for a zero row)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"cosine_rows: shapes {np.shape(a)} and {np.shape(b)} differ")
    return np.einsum("ij,ij->i", _unit(a), _unit(b))


def relevance(cosines: np.ndarray) -> np.ndarray:
    """Cosines clipped to [0, 1]."""
    return np.clip(np.asarray(cosines, dtype=np.float64), 0.0, 1.0)
