"""The layer sweep of a residual condition: the choice among layers, the plans it tries, the file
the forcing jobs read, and the settings that refuse what it cannot do."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from langarith.core.conditions import LanguageTables, parse_condition
from langarith.experiments.layer_sweep import best_layer, layer_scores
from langarith.experiments.steered_job import SteeredJob
from langarith.io.calibration import read_best_layer

RESIDUAL = [
    {"op": "diffmean", "site": "residual", "lang": "target", "strength": 2.0, "layers": "best"}
]


def tables() -> LanguageTables:
    means = {
        "en": np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 2.0]]),
        "de": np.array([[0.0, 1.0], [0.0, 4.0], [2.0, 0.0]]),
    }
    rms = {lang: np.ones(3) for lang in means}
    return LanguageTables({}, {}, residual_mean=means, residual_rms=rms)


def test_layers_best_takes_the_swept_layer_alone():
    condition = parse_condition("r", RESIDUAL)
    assert condition.swept and condition.sites == ("residual",)
    with pytest.raises(ValueError, match="layers 'best' needs the layer its layer sweep chose"):
        condition.plan("en", "de", None, tables())
    plan = SteeredJob(condition, tables=tables(), layer=1).plan("en", "de")
    assert [(op.site, op.layer) for op in plan] == [("residual", 1)]
    np.testing.assert_allclose(plan[0].values, 2.0 * np.array([0.0, 4.0]))  # μ_de − μ_en
    with pytest.raises(ValueError, match="layers 'best' applies to site residual only"):
        parse_condition("x", [{"op": "diffmean", "layers": "best"}])


def judged(rows):
    return pl.DataFrame(
        rows, schema=["layer", "success", "fluent", "success_and_fluent"], orient="row"
    )


def test_the_best_layer_has_the_most_successful_and_fluent_outputs_ties_by_success_then_depth():
    frame = judged(
        [
            (3, True, False, False), (3, True, False, False),  # success 1, s&f 0
            (6, True, True, True), (6, False, True, False),  # s&f 0.5, success 0.5
            (9, True, True, True), (9, True, False, False),  # s&f 0.5, success 1
            (12, True, True, True), (12, True, False, False),  # the same as 9: later
        ]
    )  # fmt: skip
    scores = layer_scores(frame)
    assert scores["layer"].to_list() == [3, 6, 9, 12]
    assert scores["success_and_fluent"].to_list() == [0.0, 0.5, 0.5, 0.5]
    assert scores["success_rate"].to_list() == [1.0, 0.5, 1.0, 1.0]
    assert best_layer(scores) == 9
    with pytest.raises(ValueError, match="no layers"):
        best_layer(scores.head(0))


def test_the_forcing_job_reads_the_chosen_layer(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps({"best_layer": 7}))
    assert read_best_layer(path) == 7
    path.write_text(json.dumps({"best_layer": "7"}))
    with pytest.raises(ValueError, match=r"sweep\.json: no best_layer"):
        read_best_layer(path)


def test_layer_scores_add_mean_relevance_and_the_harmonic_score():
    frame = judged(
        [(4, True, True, True), (4, False, True, False), (8, False, False, False)]
    ).with_columns(
        pl.Series("relevance", [0.9, 0.5, 0.2]), pl.Series("relevance_margin", [0.4, 0.0, -0.1])
    )
    scores = layer_scores(frame).to_dicts()
    assert [s["mean_relevance"] for s in scores] == pytest.approx([0.7, 0.2])
    assert [s["mean_relevance_margin"] for s in scores] == pytest.approx([0.2, -0.1])
    # H = 2·S·R/(S+R): layer 4 S = 0.5, R = 0.7; layer 8 S = 0 → 0
    assert [s["steering_score"] for s in scores] == pytest.approx([2 * 0.5 * 0.7 / 1.2, 0.0])
    plain = layer_scores(frame.drop("relevance", "relevance_margin")).columns
    assert "mean_relevance" not in plain and "mean_relevance_margin" not in plain
