"""Language Activation Probability Entropy (LAPE), exactly as the anchor computes it (method.md §2).

Pure functions on arrays. ``p[k, l, j]`` is the probability that neuron ``j`` of layer ``l``
has activation > 0 on language ``k``. Conventions that matter for exact reproduction:

* thresholds are order statistics of *all* ``K·L·I`` probabilities pooled, the ``m``-th smallest
  with ``m = round(rate · K·L·I)`` (Python ``round`` of the float product, as the anchor);
* both comparisons against a threshold are strict (``>``);
* the ``round(top_rate · L·I)`` eligible neurons with the lowest entropy are selected; ties in
  entropy are broken by position (layer, then neuron) so the selection is deterministic;
* a selected neuron belongs to *every* language whose probability exceeds the second threshold,
  and every language keeps an entry, even an empty one (the anchor's ``bincount`` bug is not
  reproduced).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def activation_probabilities(n_active: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    """``p[k, l, j] = n_active[k, l, j] / n_tokens[k]``; each language by its own token count."""
    n_tokens = np.asarray(n_tokens, dtype=np.float64)
    if np.any(n_tokens <= 0):
        empty = [int(k) for k in np.flatnonzero(n_tokens <= 0)]
        raise ValueError(f"languages at positions {empty} have no tokens")
    return np.asarray(n_active, dtype=np.float64) / n_tokens[:, None, None]


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy over languages of the normalised probabilities; ``0/0 -> 0`` and ``0 ln 0 = 0``."""
    total = p.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(total > 0, p / total, 0.0)
        terms = np.where(q > 0, q * np.log(q), 0.0)
    return -terms.sum(axis=0)


def order_statistic_index(rate: float, size: int) -> int:
    """``m = round(rate · size)`` — the 1-based rank of the threshold among ``size`` values."""
    return round(rate * size)


def threshold(p: np.ndarray, rate: float) -> float:
    """The ``round(rate · p.size)``-th smallest value of ``p`` (1-based, like ``kthvalue``)."""
    m = order_statistic_index(rate, p.size)
    if not 1 <= m <= p.size:
        raise ValueError(f"rate {rate} gives order statistic {m}, outside 1..{p.size}")
    return float(np.partition(p.reshape(-1), m - 1)[m - 1])


def n_selected(top_rate: float, n_layers: int, width: int) -> int:
    """``M = round(top_rate · L · I)``, the number of neurons LAPE selects."""
    return round(top_rate * n_layers * width)


@dataclass(frozen=True)
class LapeSelection:
    """The outcome of LAPE on K languages.

    ``layer``/``neuron``/``entropy`` describe the selected neurons in selection order (lowest
    entropy first); ``member[k, s]`` says whether selected neuron ``s`` belongs to language ``k``.
    """

    layer: np.ndarray
    neuron: np.ndarray
    entropy: np.ndarray
    member: np.ndarray
    tau_filter: float
    tau_assign: float
    n_eligible: int
    n_requested: int


def select(
    p: np.ndarray,
    top_rate: float,
    filter_rate: float = 0.95,
    activation_bar_ratio: float = 0.95,
) -> LapeSelection:
    """Run LAPE on ``p[K, L, I]`` (method.md §2 steps 2–7)."""
    if p.ndim != 3:
        raise ValueError(f"p must be [languages, layers, neurons], got shape {p.shape}")
    for name, rate in (
        ("top_rate", top_rate),
        ("filter_rate", filter_rate),
        ("activation_bar_ratio", activation_bar_ratio),
    ):
        if not 0 < rate < 1:
            raise ValueError(f"{name} must lie in (0, 1), got {rate}")
    _, n_layers, width = p.shape
    h = entropy(p)
    tau_filter = threshold(p, filter_rate)
    eligible = p.max(axis=0) > tau_filter
    ranked = np.where(eligible, h, np.inf).reshape(-1)
    n_requested = n_selected(top_rate, n_layers, width)
    order = np.argsort(ranked, kind="stable")[:n_requested]
    order = order[np.isfinite(ranked[order])]  # ineligible neurons are never selected
    layer, neuron = np.divmod(order, width)
    tau_assign = threshold(p, activation_bar_ratio)
    member = p[:, layer, neuron] > tau_assign
    return LapeSelection(
        layer=layer.astype(np.int64),
        neuron=neuron.astype(np.int64),
        entropy=ranked[order],
        member=member,
        tau_filter=tau_filter,
        tau_assign=tau_assign,
        n_eligible=int(eligible.sum()),
        n_requested=n_requested,
    )


def language_masks(selection: LapeSelection, n_layers: int) -> list[list[np.ndarray]]:
    """Per language, per layer, the ascending neuron indices (the anchor's mask layout)."""
    masks = []
    for k in range(selection.member.shape[0]):
        rows = selection.member[k]
        per_layer = []
        for layer in range(n_layers):
            keep = rows & (selection.layer == layer)
            per_layer.append(np.sort(selection.neuron[keep]))
        masks.append(per_layer)
    return masks
