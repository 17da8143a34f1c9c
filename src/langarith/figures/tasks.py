"""Figures of the downstream tasks and of the fallback experiment.

``task_heatmap``: test language (rows) × steered language (columns), both ordered and separated
by family (method.md §4.7); left the metric itself, with the unsteered baseline as the first
column, right its improvement over the baseline (diverging colours, centred on 0).
``fallback_figure``: share of each detected output language per cumulative deactivation step,
the modal language of each step framed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from langarith.core.languages import LANGUAGES, by_family  # noqa: E402
from langarith.io.atomic import atomic_path  # noqa: E402

BASE_COLUMN = "base"
FRACTION_METRICS = ("anchor_sentence_bleu",)  # in 0-1, every other task metric is in percent


def _family(code: str) -> str:
    return LANGUAGES[code].family if code in LANGUAGES else "Other"


def _family_breaks(codes: Sequence[str]) -> list[int]:
    """Indices ``i`` where ``codes[i]`` starts a new family (``i > 0``)."""
    return [i for i in range(1, len(codes)) if _family(codes[i]) != _family(codes[i - 1])]


def _grid(cells: pl.DataFrame, rows: list[str], cols: list[str], col_of) -> np.ndarray:
    grid = np.full((len(rows), len(cols)), np.nan)
    for r in cells.iter_rows(named=True):
        col = col_of(r)
        if r["test_lang"] in rows and col in cols:
            grid[rows.index(r["test_lang"]), cols.index(col)] = r["value"]
    return grid


def _panel(ax, grid, rows, cols, breaks, cmap, vmin, vmax, label, fmt):
    image = ax.imshow(grid, vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=90 if len(cols) > 12 else 0)
    ax.set_yticks(range(len(rows)), rows)
    for i in _family_breaks(rows):
        ax.axhline(i - 0.5, color="white", linewidth=1.5)
    for j in breaks:
        ax.axvline(j - 0.5, color="white", linewidth=1.5)
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(grid[i, j]):
                r, g, b, _ = image.cmap(image.norm(grid[i, j]))
                colour = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
                ax.text(
                    j, i, fmt.format(grid[i, j]), ha="center", va="center", fontsize=6, color=colour
                )
    plt.colorbar(image, ax=ax, label=label, fraction=0.046, pad=0.04)
    return image


def task_heatmap(
    scores: pl.DataFrame,
    selection: str,
    condition: str,
    metric: str,
    baseline: str | None,
    title: str,
    path: str | Path,
) -> None:
    """The heatmap of ``metric`` for one (selection, condition) of one task's scores."""
    cells = scores.filter(
        (pl.col("metric") == metric)
        & (pl.col("selection") == selection)
        & (pl.col("condition") == condition)
    )
    base = (
        scores.filter((pl.col("metric") == metric) & (pl.col("condition") == baseline))
        if baseline is not None
        else scores.clear()
    )
    steered = condition != baseline
    rows = by_family(sorted(set(cells["test_lang"]) | set(base["test_lang"])))
    steer_langs = by_family(sorted(set(cells["steer_lang"]) - {"none"}))
    cols = ([BASE_COLUMN] if len(base) else []) + (steer_langs if steered else [])
    grid = _grid(cells, rows, cols, lambda r: r["steer_lang"])
    if len(base):
        grid[:, 0] = _grid(base, rows, [BASE_COLUMN], lambda r: BASE_COLUMN)[:, 0]
    improvement = None
    if steered and len(base):
        gains = scores.filter(
            (pl.col("metric") == f"{metric}_improvement")
            & (pl.col("selection") == selection)
            & (pl.col("condition") == condition)
        )
        improvement = _grid(gains, rows, steer_langs, lambda r: r["steer_lang"])
    fraction = metric in FRACTION_METRICS
    vmax = 1.0 if fraction else 100.0
    fmt = "{:.2f}" if fraction else "{:.0f}"
    panels = 2 if improvement is not None else 1
    width = 0.42 * (len(cols) + (len(steer_langs) if panels == 2 else 0)) + 3.2 * panels
    fig, axes = plt.subplots(1, panels, figsize=(width, 0.42 * len(rows) + 2.0), squeeze=False)
    breaks = [i + (1 if len(base) else 0) for i in _family_breaks(steer_langs)] if steered else []
    if len(base) and steered:
        breaks = [1, *breaks]
    _panel(axes[0, 0], grid, rows, cols, breaks, "viridis", 0.0, vmax, metric, fmt)
    axes[0, 0].set_xlabel("steered language")
    axes[0, 0].set_ylabel("test language")
    axes[0, 0].set_title(f"{metric}")
    if improvement is not None:
        finite = improvement[np.isfinite(improvement)]
        limit = float(np.abs(finite).max()) if finite.size else 1.0
        limit = limit or 1.0
        _panel(
            axes[0, 1],
            improvement,
            rows,
            steer_langs,
            _family_breaks(steer_langs),
            "RdBu",
            -limit,
            limit,
            f"{metric} − baseline",
            "{:+.2f}" if fraction else "{:+.1f}",
        )
        axes[0, 1].set_xlabel("steered language")
        mean_gain = float(np.nanmean(improvement)) if finite.size else float("nan")
        axes[0, 1].set_title(f"improvement over the baseline (mean {mean_gain:+.2f})")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def fallback_figure(distribution: pl.DataFrame, title: str, path: str | Path, top: int = 12):
    """Share (%) of each detected language per step; the modal language of a step is framed."""
    steps = distribution.select("step", "label", "modal_lang").unique().sort("step")
    totals = (
        distribution.group_by("pred_lang")
        .agg(pl.col("count").sum())
        .sort(["count", "pred_lang"], descending=[True, False])
    )
    langs = totals["pred_lang"].to_list()[:top]
    grid = np.zeros((steps.height, len(langs)))
    for r in distribution.iter_rows(named=True):
        if r["pred_lang"] in langs:
            grid[r["step"] - steps["step"].min(), langs.index(r["pred_lang"])] = 100 * r["share"]
    fig, ax = plt.subplots(figsize=(0.5 * len(langs) + 3.5, 0.38 * steps.height + 1.8))
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="magma", aspect="auto")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(steps.height), steps["label"].to_list())
    ax.set_xlabel("detected output language (lid.176)")
    ax.set_ylabel("deactivated (cumulative)")
    for i, modal in enumerate(steps["modal_lang"].to_list()):
        for j in range(len(langs)):
            if grid[i, j] > 0:
                colour = "black" if grid[i, j] > 60 else "white"
                ax.text(
                    j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=6, color=colour
                )
        if modal in langs:
            j = langs.index(modal)
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="cyan", lw=1.5))
    fig.colorbar(image, ax=ax, label="share of outputs (%)")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
