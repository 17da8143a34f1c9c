"""Neuron analyses and the findings table on hand-made selections and scores."""

from __future__ import annotations

import math

import polars as pl
import pytest

from langarith.analysis import claims, counts, overlap
from langarith.analysis.findings import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_MEASURABLE,
    Finding,
    findings_frame,
    render_markdown,
    verdict,
)
from langarith.analysis.script_groups import compare_scripts
from langarith.core.selection import NeuronSet
from langarith.workflow.settings.analysis import (
    main_condition,
    replacement_pair,
    resolve_analysis,
    resolve_logit_lens,
)

LANGS = ["en", "de", "pl", "ru", "zh"]


def table(rows, languages=LANGS, n_layers=6, name="sel") -> NeuronSet:
    frame = pl.DataFrame(rows, schema=["lang", "layer", "neuron"], orient="row")
    return NeuronSet.from_frame(frame, languages, n_layers, 10, name)


# en: 1 neuron (layer 5); de: 3; pl: 2; ru: 4; zh: 6.  Shared: (5, 0) by en, de, ru.
ROWS = [
    ("en", 5, 0),
    ("de", 5, 0), ("de", 4, 1), ("de", 0, 2),
    ("pl", 5, 3), ("pl", 1, 4),
    ("ru", 5, 0), ("ru", 5, 3), ("ru", 4, 5), ("ru", 3, 6),
    ("zh", 5, 7), ("zh", 5, 8), ("zh", 4, 9), ("zh", 4, 1), ("zh", 2, 2), ("zh", 0, 3),
]  # fmt: skip


def test_counts_per_language_and_layer():
    t = table(ROWS)
    per_lang = dict(counts.per_language(t).select("lang", "n").iter_rows())
    assert per_lang == {"en": 1, "de": 3, "pl": 2, "ru": 4, "zh": 6}
    grid = counts.layer_grid(t)
    assert grid.shape == (5, 6) and grid.sum() == len(ROWS)
    assert grid[LANGS.index("zh")].tolist() == [1, 0, 1, 0, 2, 2]
    long = counts.per_layer(t)
    assert long.height == 5 * 6 and long["n"].sum() == len(ROWS)


def test_empty_language_keeps_a_zero_row():
    t = table([("de", 1, 1)], languages=["en", "de"])
    assert counts.per_language(t)["n"].to_list() == [0, 1]


def test_depth_profile_and_deep_share():
    t = table(ROWS)
    depth = counts.depth_profile(t)
    assert depth["assignments"].to_list() == [2, 1, 1, 1, 4, 7]
    # distinct neurons in layer 5: (5,0) (5,3) (5,7) (5,8)
    assert depth["unique"].to_list()[5] == 4
    assert depth["share"].sum() == pytest.approx(1.0)
    # last third of 6 layers = layers 4 and 5: (4 + 7) / 16
    assert counts.deep_share(t) == pytest.approx(11 / 16)
    assert counts.deep_share(t, fraction=0.5) == pytest.approx(12 / 16)
    assert counts.deep_share(table([])) is None


def test_sharing_histogram_counts_languages_per_neuron():
    hist = dict(counts.sharing(table(ROWS)).iter_rows())
    # (5,0): en de ru -> 3; (5,3): pl ru -> 2; (4,1): de zh -> 2; (0,2)? de only; (2,2) zh only
    assert hist == {1: 9, 2: 2, 3: 1}
    assert sum(k * n for k, n in hist.items()) == len(ROWS)


def test_overlap_matrix_diagonal_family_order_and_jaccard():
    t = table(ROWS)
    langs, matrix = overlap.overlap_matrix(t)
    assert langs == ["de", "en", "ru", "pl", "zh"]  # Germanic, Slavic, Sino-Tibetan
    sizes = dict(zip(langs, matrix.diagonal().tolist()))
    assert sizes == {"en": 1, "de": 3, "pl": 2, "ru": 4, "zh": 6}
    i, j = langs.index("ru"), langs.index("pl")
    assert matrix[i, j] == matrix[j, i] == 1  # (5, 3)
    frame = overlap.overlap_frame(t)
    assert overlap.pair_jaccard(frame, "ru", "pl") == pytest.approx(1 / (4 + 2 - 1))
    assert overlap.pair_jaccard(frame, "en", "de") == pytest.approx(1 / 3)
    assert overlap.pair_jaccard(frame, "en", "xx") is None


def test_polish_is_latin_in_the_script_comparison():
    cmp = compare_scripts(counts.per_language(table(ROWS)))
    assert set(cmp.latin) == {"en", "de", "pl"}
    assert set(cmp.non_latin) == {"ru", "zh"}
    assert cmp.ratio == pytest.approx(((4 + 6) / 2) / ((1 + 3 + 2) / 3))


@pytest.mark.parametrize(
    ("value", "threshold", "op", "expected"),
    [
        (0.6, 0.5, ">", HOLDS),
        (0.5, 0.5, ">", DOES_NOT_HOLD),
        (0.5, 0.5, ">=", HOLDS),
        (0.4, 0.5, "<", HOLDS),
        (None, 0.5, ">", NOT_MEASURABLE),
        (math.nan, 0.5, ">", NOT_MEASURABLE),
    ],
)
def test_verdict_compares_value_and_threshold(value, threshold, op, expected):
    assert verdict(value, threshold, op) == expected


def test_verdict_rejects_an_unknown_comparison():
    with pytest.raises(ValueError, match="comparison"):
        verdict(1.0, 0.0, "!=")


def test_neuron_claims_compute_their_quantities():
    t = table(ROWS)
    deep = claims.deeper_layers(t, threshold=0.5)
    assert deep.value == pytest.approx(11 / 16)
    assert deep.verdict == HOLDS
    script = claims.non_latin_specialised(t, threshold=1.0)
    assert script.value == pytest.approx(2.5)
    related = claims.related_overlap(t, [["ru", "pl"]], [["en", "zh"], ["en", "de"]])
    # min related (ru–pl 1/5) − max unrelated (en–de 1/3, en–zh 0)
    assert related.value == pytest.approx(1 / 5 - 1 / 3)
    assert related.verdict == DOES_NOT_HOLD
    missing = claims.related_overlap(t, [["da", "no"]], [["en", "zh"]])
    assert missing.verdict == NOT_MEASURABLE and "da–no" in missing.note


def scores_frame(cells, model="m", selection="s") -> pl.DataFrame:
    """cells: (condition, source, target, success_rate, n) -> the scores schema."""
    rows = [
        (model, selection, "forcing", c, s, t, "success_rate", float(v), n)
        for c, s, t, v, n in cells
    ]
    schema = ["model", "selection", "task", "condition", "test_lang", "steer_lang", "metric",
              "value", "n"]  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_forcing_claims_compute_their_differences():
    scores = scores_frame(
        [
            ("add", "en", "de", 1.0, 6),  # same family (Germanic), high-resource target
            ("add", "en", "zh", 0.5, 6),  # different family, high
            ("add", "en", "mt", 0.0, 6),  # different (mt is "Other"), low
            ("add", "en", "en", 1.0, 6),  # diagonal: ignored by both claims
            ("rep", "en", "de", 0.5, 6),
            ("rep", "en", "zh", 0.0, 6),
            ("rep", "en", "mt", 0.0, 6),
            ("rep", "en", "en", 0.5, 6),
        ]
    )
    high = claims.high_resource_easier(scores, "s", "add", ["en", "de", "zh"], 0.05)
    assert high.value == pytest.approx(0.75 - 0.0)
    typology = claims.related_targets_easier(scores, "s", "add", 0.05)
    assert typology.value == pytest.approx(1.0 - 0.25)
    versus = claims.additive_beats_replacement(scores, "s", "add", "rep", 0.05)
    assert versus.value == pytest.approx(2.5 / 4 - 1.0 / 4)
    assert versus.verdict == HOLDS
    none = claims.additive_beats_replacement(scores, "s", "add", None, 0.05)
    assert none.verdict == NOT_MEASURABLE and none.value is None


def test_task_claim_measures_the_best_cross_lingual_gain():
    rows = [
        ("m", "none", "qa", "baseline", "de", "none", "f1", 40.0, 2),
        ("m", "s", "qa", "activate", "de", "en", "f1", 43.5, 2),  # +3.5 cross-lingual
        ("m", "s", "qa", "activate", "de", "de", "f1", 60.0, 2),  # same language: ignored
        ("m", "s", "qa", "activate", "de", "en", "f1_improvement", 3.5, 2),
        ("m", "none", "nli", "baseline", "en", "none", "accuracy", 50.0, 3),
        ("m", "s", "nli", "activate", "en", "de", "accuracy", 49.0, 3),  # −1
    ]
    schema = ["model", "selection", "task", "condition", "test_lang", "steer_lang", "metric",
              "value", "n"]  # fmt: skip
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    found = claims.cross_lingual_task_gain(frame, ["baseline"], {"qa": "f1"}, 1.0)
    assert found.value == pytest.approx(3.5)
    assert "1/2" in found.measured
    assert claims.cross_lingual_task_gain(None, ["baseline"], {}, 1.0).verdict == NOT_MEASURABLE


def test_fallback_claim_reads_per_answer_and_distribution_tables():
    answers = pl.DataFrame(
        {
            "deactivated": ["", "", "en", "en", "en", "en,fr", "en,fr"],
            "pred_lang": ["en", "fr", "en", "fr", "fr", "de", "en"],
        }
    )
    found = claims.fallback_language(answers, "en", 0.5)
    # step "en": 2/3 not in English; the reference (nothing deactivated): 1/2
    assert found.value == pytest.approx(2 / 3 - 1 / 2) and found.condition == "en"
    assert "mostly fr" in found.measured and "50%" in found.note
    dist = pl.DataFrame({"deactivated": ["en", "en"], "pred_lang": ["en", "es"], "count": [1, 3]})
    assert claims.fallback_language(dist, "en", 0.5).value == pytest.approx(0.75)
    assert claims.fallback_language(None, "en", 0.5).verdict == NOT_MEASURABLE


CONFIG = {
    "languages": ["en", "de", "zh"],
    "selections": {"a": {}, "b": {}},
    "conditions": {
        "baseline": [],
        "activate": [{"op": "add", "lang": "target", "value": "mean"}],
        "deactivate-activate": [
            {"op": "set", "lang": "source", "value": 0.0},
            {"op": "add", "lang": "target", "value": "mean", "strength": 2.0},
        ],
        "deactivate-replace": [
            {"op": "set", "lang": "source", "value": 0.0},
            {"op": "replace", "lang": "target", "value": "mean"},
        ],
    },
    "forcing": {
        "selections": ["b"],
        "conditions": ["baseline", "activate", "deactivate-activate", "deactivate-replace"],
    },
}


def test_replacement_pair_finds_the_additive_twin():
    assert replacement_pair(CONFIG) == ("deactivate-activate", "deactivate-replace")
    no_replace = {**CONFIG, "forcing": {**CONFIG["forcing"], "conditions": ["activate"]}}
    assert replacement_pair(no_replace) == (None, None)
    assert main_condition(no_replace) == "activate"


def test_resolve_analysis_fills_defaults_and_keeps_overrides():
    settings = resolve_analysis({**CONFIG, "analysis": {"thresholds": {"deep_share": 0.7}}})
    assert settings["selection"] == "b"
    assert settings["condition"] == "deactivate-activate"
    assert settings["replacement_condition"] == "deactivate-replace"
    assert settings["thresholds"]["deep_share"] == 0.7
    assert settings["thresholds"]["script_ratio"] == 1.0
    assert settings["baseline_conditions"] == ["baseline"]
    lens = resolve_logit_lens({**CONFIG, "analysis": {"logit_lens": {"sources": ["de"]}}})
    assert lens["targets"] == ["en", "zh"] and lens["selection"] == "b"
    assert resolve_logit_lens(CONFIG) is None


def test_findings_table_and_markdown():
    found = [
        Finding("a", "claim A", "q", ">", 0.5, 0.7, "70%", "fig.png", selection="s"),
        Finding("b", "claim | B", "q", ">", 0.0, None, "no data", ""),
    ]
    frame = findings_frame("m", found)
    assert frame["verdict"].to_list() == [HOLDS, NOT_MEASURABLE]
    assert frame["value"].to_list() == [0.7, None]
    text = render_markdown("m", found, {"a": found[:1]})
    assert "**holds**" in text and "**not measurable here**" in text
    assert "claim \\| B" in text  # a pipe never breaks the table
    assert "1 hold, 0 do not hold, 1 not measurable here" in text
