"""How well a similarity separates same-content pairs from different-content pairs: the area
under the ROC curve as the Mann-Whitney statistic.

``auc(positive, negative)`` is the probability that a random positive score exceeds a random
negative one, ties counted one half: ``(R₊ − n₊(n₊+1)/2) / (n₊·n₀)`` with ``R₊`` the sum of the
positives' ranks among all scores, tied scores taking the mean of their ranks. 1 is a perfect
separation, 0.5 chance, 0 a perfect inversion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of ``values``, tied values sharing the mean of the ranks they span."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    start = 0
    while start < len(x):
        stop = start + 1
        while stop < len(x) and sorted_x[stop] == sorted_x[start]:
            stop += 1
        ranks[order[start:stop]] = (start + 1 + stop) / 2  # mean of ranks start+1 .. stop
        start = stop
    return ranks


def auc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """P(positive > negative) + ½·P(positive = negative); ``None`` when a side is empty."""
    pos = np.asarray(positive, dtype=np.float64)
    neg = np.asarray(negative, dtype=np.float64)
    if not len(pos) or not len(neg):
        return None
    if np.isnan(pos).any() or np.isnan(neg).any():
        raise ValueError("auc: a score is NaN")
    ranks = average_ranks(np.concatenate([pos, neg]))
    n_pos, n_neg = len(pos), len(neg)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def same_and_different(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of a square matrix ``similarity[i, j]`` between item ``i`` of one side and item ``j`` of
    the other (the same ``i`` = the same content): the diagonal (same-content pairs) and every
    off-diagonal entry (different-content pairs)."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"same_and_different: expected a square matrix, got shape {sim.shape}")
    off = ~np.eye(len(sim), dtype=bool)
    return np.diag(sim).copy(), sim[off]
