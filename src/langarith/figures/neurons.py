"""Figures of the neuron analyses: layers, depth, overlap, scripts, sharing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from langarith.analysis.counts import depth_profile, layer_grid, per_language, sharing  # noqa: E402
from langarith.analysis.overlap import overlap_matrix  # noqa: E402
from langarith.analysis.script_groups import compare_scripts  # noqa: E402
from langarith.core.languages import LANGUAGES, by_family  # noqa: E402
from langarith.core.selection import NeuronSet  # noqa: E402
from langarith.io.atomic import atomic_path  # noqa: E402

LATIN, NON_LATIN = "#4C72B0", "#DD8452"


def save(fig, path: str | Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _colour(code: str) -> str:
    info = LANGUAGES.get(code)
    return LATIN if info is None or info.latin_script else NON_LATIN


def _family_bounds(langs: list[str]) -> list[float]:
    """Positions between family groups (for separator lines)."""
    fams = [LANGUAGES[c].family if c in LANGUAGES else "?" for c in langs]
    return [i - 0.5 for i in range(1, len(fams)) if fams[i] != fams[i - 1]]


def plot_layers(table: NeuronSet, title: str, path: str | Path) -> None:
    """Neurons per language and layer (heatmap) beside neurons per language (bars)."""
    langs = by_family(list(table.languages))
    grid = layer_grid(table)[[table.languages.index(c) for c in langs]]
    fig, (ax, bars) = plt.subplots(
        1,
        2,
        figsize=(0.35 * table.n_layers + 5, 0.3 * len(langs) + 1.8),
        gridspec_kw={"width_ratios": [3, 1]},
        sharey=True,
    )
    image = ax.imshow(grid, aspect="auto", cmap="magma_r")
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xticks(range(table.n_layers), [str(i) for i in range(table.n_layers)], fontsize=7)
    ax.set_xlabel("layer")
    for y in _family_bounds(langs):
        ax.axhline(y, color="white", lw=0.8)
    fig.colorbar(image, ax=ax, label="neurons", fraction=0.04)
    totals = grid.sum(axis=1)
    bars.barh(range(len(langs)), totals, color=[_colour(c) for c in langs])
    bars.set_xlabel("neurons (orange: non-Latin script)")
    for i, n in enumerate(totals):
        bars.text(n, i, f" {n}", va="center", fontsize=7)
    fig.suptitle(title)
    save(fig, path)


def plot_depth(table: NeuronSet, title: str, path: str | Path, fraction: float = 1 / 3) -> None:
    """Assignments and unique neurons per layer, the deeper ``fraction`` shaded."""
    depth = depth_profile(table)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * table.n_layers + 2), 3.6))
    layers = depth["layer"].to_numpy()
    ax.bar(layers, depth["assignments"], color="#4C72B0", label="language–neuron assignments")
    ax.plot(layers, depth["unique"], "o-", color="#C44E52", ms=3, label="distinct neurons")
    n_deep = int(np.ceil(fraction * table.n_layers - 1e-9))
    ax.axvspan(table.n_layers - n_deep - 0.5, table.n_layers - 0.5, color="grey", alpha=0.15)
    total = int(depth["assignments"].sum())
    deep = int(depth["assignments"][table.n_layers - n_deep :].sum())
    share = f"{deep / total:.0%}" if total else "—"
    ax.set_title(f"{title}\nlast {n_deep} layers (shaded) hold {share} of {total} assignments")
    ax.set_xticks(layers, [str(i) for i in layers], fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    save(fig, path)


def plot_overlap(table: NeuronSet, title: str, path: str | Path) -> None:
    """Shared neurons between every two languages (diagonal: set size), grouped by family."""
    langs, matrix = overlap_matrix(table)
    fig, ax = plt.subplots(figsize=(0.42 * len(langs) + 2.5, 0.42 * len(langs) + 1.5))
    off = matrix.astype(float).copy()
    np.fill_diagonal(off, np.nan)
    vmax = np.nanmax(off) if np.isfinite(off).any() and np.nanmax(off) > 0 else 1
    image = ax.imshow(off, cmap="viridis", vmin=0, vmax=vmax)
    ax.set_xticks(range(len(langs)), langs, rotation=90)
    ax.set_yticks(range(len(langs)), langs)
    for i in range(len(langs)):
        for j in range(len(langs)):
            text = str(matrix[i, j])
            colour = "black" if i == j or matrix[i, j] > 0.6 * vmax else "white"
            weight = "bold" if i == j else "normal"
            ax.text(j, i, text, ha="center", va="center", fontsize=5, color=colour, weight=weight)
    for pos in _family_bounds(langs):
        ax.axhline(pos, color="white", lw=0.8)
        ax.axvline(pos, color="white", lw=0.8)
    fig.colorbar(image, ax=ax, label="shared neurons (off-diagonal)", fraction=0.04)
    ax.set_title(title)
    save(fig, path)


def plot_scripts(table: NeuronSet, title: str, path: str | Path) -> None:
    """Neurons per language, sorted, coloured by script group, with each group's mean."""
    counts = per_language(table).sort("n", descending=True)
    cmp = compare_scripts(counts)
    fig, ax = plt.subplots(figsize=(0.4 * len(counts) + 2.5, 3.8))
    langs = counts["lang"].to_list()
    ax.bar(range(len(langs)), counts["n"], color=[_colour(c) for c in langs])
    labels = [f"{c}\n{LANGUAGES[c].script}" if c in LANGUAGES else c for c in langs]
    ax.set_xticks(range(len(langs)), labels, fontsize=6)
    for mean, colour, label in (
        (cmp.latin_mean, LATIN, "Latin mean"),
        (cmp.non_latin_mean, NON_LATIN, "non-Latin mean"),
    ):
        if mean is not None:
            ax.axhline(mean, color=colour, ls="--", lw=1, label=f"{label} {mean:.0f}")
    ratio = f"{cmp.ratio:.2f}" if cmp.ratio is not None else "—"
    ax.set_title(f"{title}\nnon-Latin ÷ Latin mean = {ratio} (Polish counted as Latin)")
    ax.set_ylabel("neurons")
    ax.legend(fontsize=8)
    save(fig, path)


def plot_sharing(table: NeuronSet, title: str, path: str | Path) -> None:
    """Histogram: how many languages a selected neuron belongs to."""
    hist = sharing(table)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    ax.bar(hist["n_languages"], hist["n_neurons"], color="#55A868")
    for k, n in hist.iter_rows():
        ax.text(k, n, str(n), ha="center", va="bottom", fontsize=7)
    total = int(hist["n_neurons"].sum()) if len(hist) else 0
    multi = int(hist.filter(hist["n_languages"] > 1)["n_neurons"].sum()) if len(hist) else 0
    ax.set_title(
        f"{title}\n{multi} of {total} selected neurons belong to more than one language",
        fontsize=10,
    )
    ax.set_xlabel("languages the neuron belongs to")
    ax.set_ylabel("neurons")
    if len(hist):
        ax.set_xticks(range(1, int(hist["n_languages"].max()) + 1))
    save(fig, path)


PLOTS = {
    "layers": plot_layers,
    "depth": plot_depth,
    "overlap": plot_overlap,
    "scripts": plot_scripts,
    "sharing": plot_sharing,
}
