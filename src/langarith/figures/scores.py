"""Figures: heatmaps of scores over (test language × steered language), ordered by family."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from langarith.core.languages import by_family  # noqa: E402
from langarith.io.atomic import atomic_path  # noqa: E402


def score_heatmap(scores: pl.DataFrame, metric: str, title: str, path: str | Path) -> None:
    """Heatmap of ``metric`` (×100) with test languages as rows and steered languages as columns."""
    cells = scores.filter(
        (pl.col("metric") == metric)
        & (pl.col("test_lang") != "all")
        & (pl.col("steer_lang") != "all")
    )
    rows = by_family(sorted(set(cells["test_lang"])))
    cols = by_family(sorted(set(cells["steer_lang"])))
    grid = np.full((len(rows), len(cols)), np.nan)
    for r in cells.iter_rows(named=True):
        grid[rows.index(r["test_lang"]), cols.index(r["steer_lang"])] = 100 * r["value"]
    fig, ax = plt.subplots(figsize=(0.45 * len(cols) + 2.5, 0.45 * len(rows) + 1.8))
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("steered (target) language")
    ax.set_ylabel("prompt (source) language")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(grid[i, j]):
                colour = "black" if grid[i, j] > 60 else "white"
                ax.text(
                    j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=6, color=colour
                )
    overall = cells["value"].mean() if len(cells) else float("nan")
    ax.set_title(f"{title}\nmean {100 * overall:.1f}")
    fig.colorbar(image, ax=ax, label=f"{metric} (%)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
