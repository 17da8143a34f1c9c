"""LAPE on hand-computed cases, the anchor's deterministic constants, and a cross-check against a
direct transcription of the anchor's algorithm."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from langarith.core.lape import (
    activation_probabilities,
    entropy,
    language_masks,
    n_selected,
    order_statistic_index,
    select,
    threshold,
)
from langarith.io.activations import ActivationStats
from langarith.io.selection import read_selection, run_lape

# Three languages a, b, c; two layers of three neurons. p[k, l, j]:
P = np.array(
    [
        [[0.9, 0.5, 0.0], [0.1, 0.6, 0.3]],  # a
        [[0.0, 0.5, 0.0], [0.1, 0.6, 0.3]],  # b
        [[0.0, 0.5, 0.0], [0.2, 0.0, 0.2]],  # c
    ]
)
N_TOKENS = np.array([10, 10, 20])
N_ACTIVE = np.rint(P * N_TOKENS[:, None, None]).astype(np.int64)


def test_probabilities_use_each_languages_own_token_count():
    p = activation_probabilities(N_ACTIVE, N_TOKENS)
    np.testing.assert_allclose(p, P)
    assert N_ACTIVE[2, 0, 1] == 10  # c has twice the tokens: 10/20 = 0.5


def test_entropy_by_hand():
    h = entropy(P)
    assert h[0, 0] == 0.0  # only a fires
    assert h[0, 2] == 0.0  # never fires: 0/0 -> 0, entropy 0 (must be filtered out later)
    assert h[0, 1] == pytest.approx(math.log(3))
    assert h[1, 1] == pytest.approx(math.log(2))
    q = np.array([0.3, 0.3, 0.2]) / 0.8
    assert h[1, 2] == pytest.approx(-(q * np.log(q)).sum())
    q = np.array([0.25, 0.25, 0.5])
    assert h[1, 0] == pytest.approx(-(q * np.log(q)).sum())


def test_threshold_is_the_mth_smallest_of_all_probabilities():
    # sorted: six 0s, 0.1, 0.1, 0.2 (9th), 0.2, 0.3, 0.3, 0.5 x3, 0.6 x2, 0.9
    assert order_statistic_index(0.5, P.size) == 9
    assert threshold(P, 0.5) == 0.2
    assert threshold(P, 0.95) == 0.6  # round(17.1) = 17th smallest


def test_selection_by_hand():
    sel = select(P, top_rate=0.5, filter_rate=0.5, activation_bar_ratio=0.5)
    # eligible iff max_k p > 0.2 (strict): (0,0), (0,1), (1,1), (1,2); not (1,0) whose max is
    # exactly 0.2, and not the never-firing (0,2) despite its entropy of 0.
    assert sel.n_eligible == 4
    assert sel.n_requested == 3  # round(0.5 * 6)
    # lowest entropy first: (0,0) H=0, (1,1) H=ln2, (1,2) H=1.08; (0,1) H=ln3 is left out
    assert list(zip(sel.layer.tolist(), sel.neuron.tolist())) == [(0, 0), (1, 1), (1, 2)]
    # membership p > 0.2: a owns all three; b shares (1,1) and (1,2); c (p = 0.2) owns nothing
    np.testing.assert_array_equal(
        sel.member, [[True, True, True], [False, True, True], [False, False, False]]
    )
    masks = language_masks(sel, n_layers=2)
    assert len(masks) == 3  # the last language keeps its (empty) entry
    assert [m.tolist() for m in masks[0]] == [[0], [1, 2]]
    assert [m.tolist() for m in masks[1]] == [[], [1, 2]]
    assert [m.tolist() for m in masks[2]] == [[], []]


def test_fewer_eligible_than_requested_selects_only_eligible():
    sel = select(P, top_rate=0.99, filter_rate=0.5, activation_bar_ratio=0.5)
    assert sel.n_requested == 6
    assert len(sel.layer) == 4
    assert (0, 2) not in set(zip(sel.layer.tolist(), sel.neuron.tolist()))


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_rates_outside_unit_interval_are_rejected(rate):
    with pytest.raises(ValueError, match="top_rate"):
        select(P, top_rate=rate)


@pytest.mark.parametrize(
    ("layers", "width", "expected"),
    [
        (32, 14336, [4588, 9175, 13763, 18350, 22938]),  # Llama-3.1-8B, Aya-Expanse-8B
        (40, 14336, [5734, 11469, 17203, 22938, 28672]),  # Mistral-Nemo
        (40, 24576, [9830, 19661, 29491, 39322, 49152]),  # Aya-Expanse-32B
    ],
)
def test_anchor_selection_sizes(layers, width, expected):
    rates = [0.01, 0.02, 0.03, 0.04, 0.05]
    assert [n_selected(r, layers, width) for r in rates] == expected


@pytest.mark.parametrize(
    ("size", "expected"), [(458752, 9152102), (573440, 11440128), (983040, 19611648)]
)
def test_anchor_order_statistic_index(size, expected):
    assert order_statistic_index(0.95, size * 21) == expected


def anchor_lape(p: torch.Tensor, top_rate: float, rate: float):
    """A direct transcription of the anchor's steps with torch ops (method.md §2)."""
    k, n_layers, width = p.shape
    probs = p.permute(1, 2, 0)  # [L, I, K] as the anchor stacks them
    norm = probs / probs.sum(dim=-1, keepdim=True)
    norm[torch.isnan(norm)] = 0
    log = torch.where(norm > 0, norm.log(), torch.zeros_like(norm))
    ent = -(norm * log).sum(dim=-1)
    flat = probs.flatten()
    tau = flat.kthvalue(round(len(flat) * rate)).values
    top = probs.max(dim=-1).values
    ent[top <= tau] = float("inf")
    flat_ent = ent.flatten()
    count = round(n_layers * width * top_rate)
    _, idx = flat_ent.topk(count, largest=False)
    idx = idx[torch.isfinite(flat_ent[idx])]
    rows, cols = idx // width, idx % width
    member = (probs[rows, cols] > tau).T
    return set(zip(rows.tolist(), cols.tolist())), member, rows, cols


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_direct_transcription_of_the_anchor(seed):
    rng = np.random.default_rng(seed)
    n_tokens = rng.integers(500, 2000, size=6)
    # language-specific bias so that entropies differ; continuous values avoid ties
    base = rng.beta(0.5, 3.0, size=(6, 4, 50))
    n_active = np.floor(base * n_tokens[:, None, None]).astype(np.int64)
    p = activation_probabilities(n_active, n_tokens)
    sel = select(p, top_rate=0.05, filter_rate=0.9, activation_bar_ratio=0.9)
    expected, member, rows, cols = anchor_lape(torch.from_numpy(p), 0.05, 0.9)
    got = set(zip(sel.layer.tolist(), sel.neuron.tolist()))
    assert got == expected
    order = {pos: i for i, pos in enumerate(zip(rows.tolist(), cols.tolist()))}
    perm = [order[pos] for pos in zip(sel.layer.tolist(), sel.neuron.tolist())]
    np.testing.assert_array_equal(sel.member, member.numpy()[:, perm])


def stats_from(n_active: np.ndarray, n_tokens: int, mean: float) -> ActivationStats:
    return ActivationStats(
        n_tokens=int(n_tokens),
        n_active=n_active,
        act_sum=np.full(n_active.shape, mean * n_tokens),
        act_sq_sum=np.zeros(n_active.shape),
    )


def test_run_lape_writes_every_language_and_the_anchor_masks(tmp_path):
    stats = [stats_from(N_ACTIVE[k], N_TOKENS[k], mean=k + 1.0) for k in range(3)]
    out = tmp_path / "sel"
    summary = run_lape(
        stats, ["a", "b", "c"], 0.5, 0.5, 0.5, f"{out}.parquet", f"{out}.pt", f"{out}.json"
    )
    assert summary["neurons_per_language"] == {"a": 3, "b": 2, "c": 0}
    masks = torch.load(f"{out}.pt", weights_only=True)
    assert len(masks) == 3 and all(len(per_layer) == 2 for per_layer in masks)
    assert masks[1][1].tolist() == [1, 2] and masks[1][1].dtype == torch.int64
    neurons = read_selection(f"{out}.parquet", f"{out}.json")
    assert neurons.languages == ("a", "b", "c")
    assert neurons.count("c") == 0 and [m.tolist() for m in neurons.masks["c"]] == [[], []]
    import polars as pl

    frame = pl.read_parquet(f"{out}.parquet")
    assert frame.columns == ["lang", "layer", "neuron", "entropy", "p_active", "act_mean"]
    row = frame.filter((pl.col("lang") == "b") & (pl.col("layer") == 1) & (pl.col("neuron") == 1))
    assert row["p_active"].item() == pytest.approx(0.6)
    assert row["act_mean"].item() == pytest.approx(2.0)
    assert row["entropy"].item() == pytest.approx(math.log(2))
