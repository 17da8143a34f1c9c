"""Figures checked for what they show: the numbers behind each heatmap cell, the row and
column labels and their order, the titles; not only that a PNG was written."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest

from langarith.core.selection import NeuronSet
from langarith.experiments.scoring import SCORE_SCHEMA
from langarith.figures import neurons as neuron_figures
from langarith.figures.scores import score_heatmap
from langarith.figures.tasks import fallback_figure, task_heatmap


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting functions close, kept open for inspection."""
    kept = []
    monkeypatch.setattr(plt, "close", lambda fig=None: kept.append(fig))
    yield kept
    monkeypatch.undo()
    plt.close("all")


def shown(ax) -> np.ndarray:
    """The values of the heatmap of ``ax`` (masked cells as NaN)."""
    data = ax.images[0].get_array()
    return np.ma.filled(np.ma.asarray(data, dtype=float), np.nan)


def ticks(ax, axis: str) -> list[str]:
    labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in labels]


def cell_texts(ax) -> dict[tuple[int, int], str]:
    return {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }


def scores(rows) -> pl.DataFrame:
    """rows: (selection, condition, test, steer, metric, value)."""
    return pl.DataFrame(
        [("m", sel, "t", c, a, b, metric, float(v), 2) for sel, c, a, b, metric, v in rows],
        schema=SCORE_SCHEMA,
        orient="row",
    )


def test_the_forcing_heatmap_shows_percent_per_cell_in_family_order(drawn, tmp_path):
    frame = scores(
        [
            ("s", "c", "zh", "de", "success_rate", 0.25),
            ("s", "c", "en", "fr", "success_rate", 0.5),
            ("s", "c", "en", "de", "success_rate", 1.0),
            ("s", "c", "es", "fr", "success_rate", 0.0),
            ("s", "c", "all", "all", "success_rate", 0.123),  # the overall row: not a cell
            ("s", "c", "en", "de", "target_prob", 0.0),  # another metric
        ]
    )
    score_heatmap(frame, "success_rate", "forcing", tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    (fig,) = drawn
    ax = fig.axes[0]
    # by family, not alphabetically: Romance, Germanic, Sino-Tibetan
    assert ticks(ax, "y") == ["es", "en", "zh"]
    assert ticks(ax, "x") == ["fr", "de"]
    np.testing.assert_array_equal(shown(ax), [[0.0, np.nan], [50.0, 100.0], [np.nan, 25.0]])
    assert cell_texts(ax) == {(0, 0): "0", (1, 0): "50", (1, 1): "100", (2, 1): "25"}
    # the mean of the four cells, in percent: (0 + 50 + 100 + 25) / 4
    assert ax.get_title() == "forcing\nmean 43.8"


def test_the_task_heatmap_has_the_baseline_column_and_the_improvement_panel(drawn, tmp_path):
    frame = scores(
        [
            ("none", "baseline", "en", "none", "f1", 40.0),
            ("none", "baseline", "de", "none", "f1", 10.0),
            ("s", "act", "en", "de", "f1", 45.0),
            ("s", "act", "en", "fr", "f1", 30.0),
            ("s", "act", "de", "fr", "f1", 20.0),
            ("s", "act", "en", "de", "f1_improvement", 5.0),
            ("s", "act", "en", "fr", "f1_improvement", -10.0),
            ("s", "act", "de", "fr", "f1_improvement", 10.0),
            ("other", "act", "de", "de", "f1", 99.0),  # another selection
        ]
    )
    task_heatmap(frame, "s", "act", "f1", "baseline", "qa", tmp_path / "t.png")
    (fig,) = drawn
    left, right = fig.axes[:2]  # then their colour bars
    assert ticks(left, "y") == ["de", "en"] and ticks(left, "x") == ["base", "fr", "de"]
    np.testing.assert_array_equal(shown(left), [[10.0, 20.0, np.nan], [40.0, 30.0, 45.0]])
    assert ticks(right, "x") == ["fr", "de"]
    np.testing.assert_array_equal(shown(right), [[10.0, np.nan], [-10.0, 5.0]])
    # diverging colours centred on 0, as wide as the largest gain
    assert right.images[0].get_clim() == (-10.0, 10.0)
    assert right.get_title() == "improvement over the baseline (mean +1.67)"
    assert cell_texts(right)[(1, 0)] == "-10.0"
    # the baseline alone: one column, no improvement panel
    drawn.clear()
    task_heatmap(frame, "none", "baseline", "f1", "baseline", "qa", tmp_path / "b.png")
    (fig,) = drawn
    assert ticks(fig.axes[0], "x") == ["base"] and len(fig.axes) == 2
    np.testing.assert_array_equal(shown(fig.axes[0]), [[10.0], [40.0]])


def test_the_fallback_figure_shows_shares_per_step_and_frames_the_modal_language(drawn, tmp_path):
    from langarith.experiments.fallback import distribution

    langid = pl.DataFrame(
        {
            "step": [0, 0, 0, 0, 1, 1, 1, 1],
            "deactivated": ["", "", "", "", "en", "en", "en", "en"],
            "added_lang": ["", "", "", "", "en", "en", "en", "en"],
            "n_neurons": [0] * 4 + [3] * 4,
            "pred_lang": ["en", "en", "en", "fr", "fr", "fr", "de", "en"],
        },
        schema_overrides={"step": pl.Int32, "n_neurons": pl.Int64},
    )
    fallback_figure(distribution(langid), "fallback", tmp_path / "fb.png")
    (fig,) = drawn
    ax = fig.axes[0]
    # languages by total count: en 4, fr 3, de 1
    assert ticks(ax, "x") == ["en", "fr", "de"]
    assert ticks(ax, "y") == ["0: none", "1: en"]
    np.testing.assert_allclose(shown(ax), [[75.0, 25.0, 0.0], [25.0, 50.0, 25.0]])
    framed = [(p.get_x() + 0.5, p.get_y() + 0.5) for p in ax.patches]
    assert framed == [(0.0, 0.0), (1.0, 1.0)]  # en in step 0, fr in step 1


def test_the_neuron_figures_show_counts_per_language_and_layer_and_the_overlap(drawn, tmp_path):
    rows = [("en", 2, 0), ("de", 2, 0), ("de", 0, 1), ("zh", 1, 3), ("zh", 1, 4), ("zh", 2, 0)]
    frame = pl.DataFrame(rows, schema=["lang", "layer", "neuron"], orient="row")
    table = NeuronSet.from_frame(frame, ["zh", "en", "de"], 3, 8, "sel")
    neuron_figures.plot_layers(table, "layers", tmp_path / "layers.png")
    (fig,) = drawn
    grid, bars = fig.axes[0], fig.axes[1]
    assert ticks(grid, "y") == ["de", "en", "zh"]  # by family, not config order
    np.testing.assert_array_equal(shown(grid), [[1, 0, 1], [0, 0, 1], [0, 2, 1]])
    assert [p.get_width() for p in bars.patches] == [2, 1, 3]
    drawn.clear()
    neuron_figures.plot_overlap(table, "overlap", tmp_path / "overlap.png")
    (fig,) = drawn
    ax = fig.axes[0]
    assert ticks(ax, "x") == ticks(ax, "y") == ["de", "en", "zh"]
    # off the diagonal: neuron (2, 0) is shared by all three; the diagonal is each set's size
    np.testing.assert_array_equal(shown(ax), [[np.nan, 1, 1], [1, np.nan, 1], [1, 1, np.nan]])
    assert [cell_texts(ax)[(i, i)] for i in range(3)] == ["2", "1", "3"]
