"""Every claim of the findings table, its value and its verdict, on inputs small enough to
compute by hand; the fallback finding from per-answer tables and from distributions; the
thresholds the table applies. Verdicts are written out (``HOLDS`` …), never recomputed with
``verdict``; values sit next to their thresholds, so a changed comparison or threshold shows."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from langarith.analysis import claims
from langarith.analysis.assemble import _fallback_frame, run_findings_job
from langarith.analysis.findings import DOES_NOT_HOLD, HOLDS, NOT_MEASURABLE
from langarith.core.selection import NeuronSet
from langarith.experiments.fallback import distribution, step_label
from langarith.experiments.scoring import SCORE_SCHEMA
from langarith.workflow.settings.analysis import DEFAULTS, check_analysis, resolve_analysis


def table(rows, languages, n_layers=6, name="sel") -> NeuronSet:
    frame = pl.DataFrame(rows, schema=["lang", "layer", "neuron"], orient="row")
    return NeuronSet.from_frame(frame, languages, n_layers, 10, name)


# --------------------------------------------------------------------------- neuron claims


def test_deeper_layers_is_the_share_in_the_last_third_and_must_exceed_its_threshold():
    # 6 layers: the last third is layers 4 and 5; 3 of 6 assignments sit there
    half = table(
        [("en", 0, 0), ("en", 1, 0), ("de", 2, 0), ("de", 4, 0), ("en", 5, 1), ("de", 5, 2)],
        ["en", "de"],
    )
    found = claims.deeper_layers(half, threshold=0.5)
    assert found.value == pytest.approx(0.5)
    assert found.verdict == DOES_NOT_HOLD  # "> 0.5": exactly half is not more
    assert found.measured == "50.0% of 6 assignments (uniform: 33%)"
    assert found.rule == "> 0.5" and found.selection == "sel"
    assert claims.deeper_layers(half, threshold=0.49).verdict == HOLDS
    # fraction 1/2 of 6 layers = layers 3-5: 3 of 6 again; of 3 layers 1/3 = the last layer
    assert claims.deeper_layers(half, 0.5, fraction=0.5).value == pytest.approx(0.5)
    three = table([("en", 2, 0), ("en", 2, 1), ("en", 0, 0)], ["en"], n_layers=3)
    assert claims.deeper_layers(three, 0.5).value == pytest.approx(2 / 3)
    assert claims.deeper_layers(three, 0.5).verdict == HOLDS
    # of 4 layers, a third rounds up to the last 2: uniform would put half there
    four = claims.deeper_layers(table([("en", 3, 0), ("en", 0, 0)], ["en"], n_layers=4), 0.5)
    assert four.measured == "50.0% of 2 assignments (uniform: 50%)"
    empty = claims.deeper_layers(table([], ["en"]), 0.5)
    assert empty.value is None and empty.verdict == NOT_MEASURABLE
    assert empty.measured == "the selection is empty"


def test_non_latin_specialisation_is_the_ratio_of_mean_neurons_per_language():
    # Latin: en 2, de 4 (mean 3); non-Latin: ru 6, zh 3 (mean 4.5)
    rows = (
        [("en", 0, i) for i in range(2)]
        + [("de", 1, i) for i in range(4)]
        + [("ru", 2, i) for i in range(6)]
        + [("zh", 3, i) for i in range(3)]
    )
    found = claims.non_latin_specialised(table(rows, ["en", "de", "ru", "zh"]), threshold=1.0)
    assert found.value == pytest.approx(1.5)
    assert found.verdict == HOLDS
    assert found.measured == "non-Latin (ru zh) 4.5 vs Latin (2 languages) 3.0 neurons per language"
    assert claims.non_latin_specialised(table(rows, ["en", "de", "ru", "zh"]), 1.5).verdict == (
        DOES_NOT_HOLD
    )
    # equal means: ratio 1 is not > 1
    even = [("en", 0, 0), ("ru", 0, 1)]
    assert claims.non_latin_specialised(table(even, ["en", "ru"]), 1.0).value == pytest.approx(1.0)
    assert claims.non_latin_specialised(table(even, ["en", "ru"]), 1.0).verdict == DOES_NOT_HOLD
    latin_only = claims.non_latin_specialised(table(rows[:6], ["en", "de"]), 1.0)
    assert latin_only.value is None and latin_only.verdict == NOT_MEASURABLE


def test_related_overlap_is_min_related_minus_max_unrelated_jaccard():
    rows = [
        ("es", 1, 0), ("es", 1, 1), ("es", 2, 0),  # es ∩ pt = {(1,0), (1,1)}, ∪ has 4
        ("pt", 1, 0), ("pt", 1, 1), ("pt", 2, 5),
        ("da", 3, 0), ("no", 3, 0), ("no", 3, 1), ("no", 3, 2),  # da–no: 1/3
        ("en", 0, 0), ("zh", 0, 0), ("zh", 0, 1), ("zh", 0, 2), ("zh", 0, 3),  # en–zh: 1/4
    ]  # fmt: skip
    t = table(rows, ["es", "pt", "da", "no", "en", "zh"])
    found = claims.related_overlap(t, [["es", "pt"], ["da", "no"]], [["en", "zh"]])
    # the least related pair (da–no) against the most unrelated one
    assert found.value == pytest.approx(1 / 3 - 1 / 4)
    assert found.verdict == HOLDS and found.note == ""
    assert found.measured == "Jaccard es–pt 0.500, da–no 0.333, en–zh 0.250"
    # related pairs less close than an unrelated one: negative, does not hold
    apart = claims.related_overlap(t, [["da", "no"]], [["en", "zh"], ["es", "pt"]])
    assert apart.value == pytest.approx(1 / 3 - 1 / 2) and apart.verdict == DOES_NOT_HOLD
    # as close as the unrelated pair: 0 is not > 0
    tied = claims.related_overlap(t, [["da", "no"]], [["da", "no"]])
    assert tied.value == pytest.approx(0.0) and tied.verdict == DOES_NOT_HOLD
    missing = claims.related_overlap(t, [["ru", "pl"]], [["en", "zh"]])
    assert missing.value is None and missing.verdict == NOT_MEASURABLE
    assert missing.note == "pairs not configured here: ru–pl"


# --------------------------------------------------------------------------- forcing claims


def scores_frame(cells, selection="s") -> pl.DataFrame:
    """cells: (condition, source, target, metric, value, n) -> the scores schema."""
    rows = [
        ("m", selection, "forcing", c, s, t, metric, float(v), n) for c, s, t, metric, v, n in cells
    ]
    return pl.DataFrame(rows, schema=SCORE_SCHEMA, orient="row")


FORCING = pl.concat(
    [
        scores_frame(
            [
                # additive: weighted by n: (1.0·2 + 0.5·6) / 8 = 0.625 (the plain mean is 0.75)
                ("add", "en", "de", "success_rate", 1.0, 2),
                ("add", "en", "fr", "success_rate", 0.5, 6),
                ("add", "all", "all", "success_rate", 0.0, 8),  # the overall row: not a cell
                ("add", "en", "de", "target_prob", 0.0, 2),  # another metric
                # replacement: (0.5·4 + 0·4) / 8 = 0.25
                ("rep", "en", "de", "success_rate", 0.5, 4),
                ("rep", "en", "fr", "success_rate", 0.0, 4),
            ]
        ),
        scores_frame([("add", "en", "de", "success_rate", 0.0, 100)], selection="other"),
    ]
)


def test_additive_beats_replacement_compares_n_weighted_success_over_the_cells():
    found = claims.additive_beats_replacement(FORCING, "s", "add", "rep", threshold=0.05)
    assert found.value == pytest.approx(0.625 - 0.25)
    assert found.verdict == HOLDS
    assert found.condition == "add vs rep" and found.measured == "add 62.5%, rep 25.0%"
    backwards = claims.additive_beats_replacement(FORCING, "s", "rep", "add", threshold=0.05)
    assert backwards.value == pytest.approx(-0.375) and backwards.verdict == DOES_NOT_HOLD
    assert claims.additive_beats_replacement(FORCING, "s", "add", "rep", 0.375).verdict == (
        DOES_NOT_HOLD
    )
    for additive, replacement in (("add", None), (None, "rep")):
        none = claims.additive_beats_replacement(FORCING, "s", additive, replacement, 0.05)
        assert none.value is None and none.verdict == NOT_MEASURABLE
    absent = claims.additive_beats_replacement(FORCING, "s", "add", "nope", 0.05)
    assert absent.verdict == NOT_MEASURABLE
    assert absent.measured == "no forcing scores for these conditions"


TARGETS = scores_frame(
    [
        ("c", "en", "de", "success_rate", 0.9, 1),  # high, same family (Germanic)
        ("c", "fr", "de", "success_rate", 0.6, 3),  # high, different family
        ("c", "en", "mt", "success_rate", 0.2, 2),  # low ("Other": no family)
        ("c", "ja", "mt", "success_rate", 0.0, 2),  # low, Other–Other: different
        ("c", "fr", "es", "success_rate", 0.4, 2),  # low here, same family (Romance)
        ("c", "de", "de", "success_rate", 1.0, 50),  # the diagonal: ignored
    ]
)


def test_high_resource_easier_compares_off_diagonal_targets_by_resource():
    found = claims.high_resource_easier(TARGETS, "s", "c", ["en", "de"], threshold=0.05)
    high = (0.9 * 1 + 0.6 * 3) / 4
    low = (0.2 * 2 + 0.0 * 2 + 0.4 * 2) / 6
    assert found.value == pytest.approx(high - low)
    assert found.verdict == HOLDS and found.condition == "c"
    assert found.measured == "high (de) 67.5% vs low (es mt) 20.0%"
    # every target high-resource: nothing to compare with
    only_high = claims.high_resource_easier(TARGETS, "s", "c", ["de", "mt", "es"], 0.05)
    assert only_high.value is None and only_high.verdict == NOT_MEASURABLE
    assert claims.high_resource_easier(TARGETS, "s", None, ["de"], 0.05).verdict == NOT_MEASURABLE
    # a threshold above the difference
    assert claims.high_resource_easier(TARGETS, "s", "c", ["en", "de"], 0.5).verdict == (
        DOES_NOT_HOLD
    )


def test_related_targets_easier_compares_same_and_different_family_pairs():
    found = claims.related_targets_easier(TARGETS, "s", "c", threshold=0.05)
    same = (0.9 * 1 + 0.4 * 2) / 3  # en–de, fr–es
    different = (0.6 * 3 + 0.2 * 2 + 0.0 * 2) / 7  # fr–de, en–mt, ja–mt (Other is no family)
    assert found.value == pytest.approx(same - different)
    assert found.verdict == HOLDS
    assert found.measured.startswith("same family 56.7% (2 cells) vs different 31.4%")
    flat = scores_frame(
        [("c", "en", "de", "success_rate", 0.5, 1), ("c", "en", "zh", "success_rate", 0.5, 1)]
    )
    tied = claims.related_targets_easier(flat, "s", "c", 0.05)
    assert tied.value == pytest.approx(0.0) and tied.verdict == DOES_NOT_HOLD
    no_same = scores_frame([("c", "en", "zh", "success_rate", 0.5, 1)])
    assert claims.related_targets_easier(no_same, "s", "c", 0.05).verdict == NOT_MEASURABLE


# --------------------------------------------------------------------------- tasks


def task_frame(rows) -> pl.DataFrame:
    """rows: (task, condition, test, steer, metric, value)."""
    return pl.DataFrame(
        [("m", "s", t, c, a, b, metric, float(v), 2) for t, c, a, b, metric, v in rows],
        schema=SCORE_SCHEMA,
        orient="row",
    )


def test_cross_lingual_task_gain_is_the_best_gain_over_the_same_language_baseline():
    frame = task_frame(
        [
            ("qa", "baseline", "de", "none", "exact_match", 40.0),
            ("qa", "baseline", "de", "none", "f1", 10.0),
            ("qa", "activate", "de", "en", "exact_match", 41.5),  # +1.5
            ("qa", "activate", "de", "fr", "exact_match", 38.0),  # −2
            ("qa", "activate", "de", "en", "f1", 90.0),  # f1 is not the configured metric
            ("qa", "activate", "de", "de", "exact_match", 99.0),  # same language: not counted
            ("qa", "activate", "de", "en", "exact_match_improvement", 1.5),
            ("nli", "baseline", "en", "none", "accuracy", 50.0),
            ("nli", "other-baseline", "en", "none", "accuracy", 30.0),  # baselines averaged: 40
            ("nli", "baseline", "en", "none", "accuracy_loglik", 0.0),
            ("nli", "activate", "en", "de", "accuracy", 41.0),  # +1 over the mean 40
            ("nli", "activate", "zh", "de", "accuracy", 99.0),  # no zh baseline: not counted
        ]
    )
    baselines = ["baseline", "other-baseline"]
    found = claims.cross_lingual_task_gain(frame, baselines, {"qa": "exact_match"}, 1.0)
    assert found.value == pytest.approx(1.5)
    assert found.verdict == HOLDS
    assert found.measured == (
        "nli accuracy +1.00 (en steered to de); qa exact_match +1.50 (de steered to en); "
        "2/3 cross-lingual cells above baseline"
    )
    assert claims.cross_lingual_task_gain(frame, baselines, {"qa": "exact_match"}, 1.5).verdict == (
        DOES_NOT_HOLD
    )
    # the qa metric falls back to the first available one (exact_match) for an unknown name
    assert claims.cross_lingual_task_gain(frame, baselines, {"qa": "bleu"}, 1.0).value == (
        pytest.approx(1.5)
    )
    assert claims.cross_lingual_task_gain(frame, baselines, {"qa": "f1"}, 1.0).value == (
        pytest.approx(80.0)
    )
    for empty in (None, frame.clear()):
        none = claims.cross_lingual_task_gain(empty, baselines, {}, 1.0)
        assert none.value is None and none.verdict == NOT_MEASURABLE
    only_base = claims.cross_lingual_task_gain(frame.head(2), baselines, {}, 1.0)
    assert only_base.verdict == NOT_MEASURABLE


# --------------------------------------------------------------------------- fallback

# per answer, as the fallback experiment's langid table: step 0 is the reference
ANSWERS = pl.DataFrame(
    {
        "step": [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2],
        "deactivated": ["", "", "", "", "en", "en", "en", "en", "en,fr", "en,fr", "en,fr", "en,fr"],
        "added_lang": ["", "", "", "", "en", "en", "en", "en", "fr", "fr", "fr", "fr"],
        "n_neurons": [0] * 4 + [3] * 4 + [5] * 4,
        "pred_lang": ["en", "en", "en", "fr", "fr", "de", "de", "en", "en", "en", "fr", "en"],
    },
    schema_overrides={"step": pl.Int32, "n_neurons": pl.Int64},
)


def test_fallback_claim_from_answers_is_the_largest_share_off_the_prompt_language():
    found = claims.fallback_language(ANSWERS, "en", threshold=0.5)
    # step "en": 3/4 not English, mostly de (2 of 3); reference (nothing deactivated): 1/4
    assert found.value == pytest.approx(0.75 - 0.25)
    assert found.verdict == HOLDS  # ">= 0.5": exactly 0.5 holds
    assert found.condition == "en"
    assert found.measured == "75% of answers not in en after deactivating en, mostly de"
    assert found.note == "with nothing deactivated: 25% not in en"
    assert claims.fallback_language(ANSWERS, "en", threshold=0.51).verdict == DOES_NOT_HOLD
    # another prompt language: step "en,fr" has 1/4 not in fr; the reference 3/4; step en 3/4
    other = claims.fallback_language(ANSWERS, "fr", 0.5)
    assert other.value == pytest.approx(0.75 - 0.75) and other.verdict == DOES_NOT_HOLD


def test_fallback_claim_from_the_distribution_weighs_by_count():
    dist = distribution(ANSWERS)
    assert {"count", "deactivated", "pred_lang"} <= set(dist.columns)
    found = claims.fallback_language(dist, "en", 0.5)
    assert found.value == pytest.approx(0.5) and found.condition == "en"
    assert "mostly de" in found.measured
    # counts, not rows: one row of 3 Spanish answers outweighs one row of 1 English answer
    weighted = pl.DataFrame(
        {"deactivated": ["", "en", "en"], "pred_lang": ["en", "en", "es"], "count": [5, 1, 3]}
    )
    got = claims.fallback_language(weighted, "en", 0.5)
    assert got.value == pytest.approx(0.75 - 0.0) and "mostly es" in got.measured
    assert got.note == "with nothing deactivated: 0% not in en"


def test_fallback_claim_with_condition_steps_has_no_reference():
    frame = pl.DataFrame({"condition": ["a", "a", "b", "b"], "pred_lang": ["en", "fr", "de", "zh"]})
    found = claims.fallback_language(frame, "en", 0.5)
    # step b: 2/2 not English, tie de/zh -> the alphabetically first
    assert found.value == pytest.approx(1.0) and found.condition == "b"
    assert found.measured.endswith("mostly de")
    assert found.note == "no reference step: the share is not corrected"
    bad = claims.fallback_language(pl.DataFrame({"pred_lang": ["en"]}), "en", 0.5)
    assert bad.value is None and bad.verdict == NOT_MEASURABLE
    only_reference = claims.fallback_language(ANSWERS.filter(pl.col("step") == 0), "en", 0.5)
    assert only_reference.verdict == NOT_MEASURABLE


def test_step_labels_name_the_language_each_step_adds():
    assert step_label("") == "0: none"
    assert step_label("en") == "1: en"
    assert step_label("en,fr") == "2: +fr"
    assert step_label("en,fr,es,it") == "4: +it"
    labels = dict(distribution(ANSWERS).select("step", "label").unique().iter_rows())
    assert labels == {0: "0: none", 1: "1: en", 2: "2: +fr"}


def test_fallback_frame_prefers_per_answer_tables_over_distributions(tmp_path):
    answers, dist = tmp_path / "langid.parquet", tmp_path / "languages.parquet"
    ANSWERS.write_parquet(answers)
    distribution(ANSWERS).write_parquet(dist)
    both = _fallback_frame([str(dist), str(answers)])
    assert both.height == ANSWERS.height and "count" not in both.columns  # no double count
    assert claims.fallback_language(both, "en", 0.5).value == pytest.approx(0.5)
    only_dist = _fallback_frame([str(dist)])
    assert only_dist["count"].sum() == ANSWERS.height
    assert claims.fallback_language(only_dist, "en", 0.5).value == pytest.approx(0.5)
    assert _fallback_frame([]) is None


# --------------------------------------------------------------------------- the table


def test_default_thresholds_are_the_papers():
    assert DEFAULTS["thresholds"] == {
        "deep_share": 0.5,
        "script_ratio": 1.0,
        "overlap_margin": 0.0,
        "success_margin": 0.05,
        "task_gain": 1.0,
        "fallback_share": 0.5,
    }
    assert DEFAULTS["fallback_source"] == "en"
    assert DEFAULTS["deep_fraction"] == pytest.approx(1 / 3)


CONFIG = {
    "languages": ["en", "de", "fr"],
    "selections": {"a": {}},
    "conditions": {
        "baseline": [],
        "add": [{"op": "add", "lang": "target", "value": "mean"}],
        "rep": [{"op": "replace", "lang": "target", "value": "mean"}],
        "res": [{"op": "diffmean", "site": "residual", "lang": "target"}],
    },
    "forcing": {"selections": ["a"], "conditions": ["baseline", "add", "rep", "res"]},
}


def test_the_findings_job_measures_every_claim_from_its_files(tmp_path):
    # neurons: 2 of 3 assignments in the last layer of 3 (deep share 2/3)
    pl.DataFrame(
        {"lang": ["en", "de", "de"], "layer": [2, 0, 2], "neuron": [0, 1, 0]}
    ).write_parquet(tmp_path / "a.parquet")
    (tmp_path / "a.json").write_text(
        json.dumps({"languages": ["en", "de", "fr"], "n_layers": 3, "width": 8})
    )
    scores_frame(
        [
            ("add", "en", "de", "success_rate", 0.8, 4),
            ("add", "en", "fr", "success_rate", 0.4, 4),
            ("rep", "en", "de", "success_rate", 0.2, 4),
            ("rep", "en", "fr", "success_rate", 0.2, 4),
            ("res", "en", "de", "success_rate", 0.9, 4),
            ("res", "en", "fr", "success_rate", 0.7, 4),
        ],
        selection="a",
    ).write_parquet(tmp_path / "forcing.parquet")
    task_frame(
        [
            ("qa", "baseline", "de", "none", "f1", 20.0),
            ("qa", "add", "de", "en", "f1", 23.0),
        ]
    ).write_parquet(tmp_path / "qa.parquet")
    ANSWERS.write_parquet(tmp_path / "langid.parquet")
    distribution(ANSWERS).write_parquet(tmp_path / "languages.parquet")
    settings = resolve_analysis(CONFIG)
    assert (settings["condition"], settings["replacement_condition"]) == ("add", "rep")
    assert settings["additive_condition"] == "add"
    assert settings["residual_condition"] == "res"
    found = run_findings_job(
        model="m",
        selections=[("a", str(tmp_path / "a.parquet"), str(tmp_path / "a.json"))],
        forcing_scores=str(tmp_path / "forcing.parquet"),
        task_scores=[str(tmp_path / "qa.parquet")],
        fallback=[str(tmp_path / "languages.parquet"), str(tmp_path / "langid.parquet")],
        settings=settings,
        figures={"neurons": {}, "forcing": {}},
        out_markdown=str(tmp_path / "findings.md"),
        out_parquet=str(tmp_path / "findings.parquet"),
    )
    got = {f.claim_id: (f.value, f.threshold, f.verdict) for f in found}
    expected = {
        "deeper-layers": (2 / 3, 0.5, HOLDS),
        "non-latin-specialised": (None, 1.0, NOT_MEASURABLE),  # only Latin-script languages
        "related-overlap": (None, 0.0, NOT_MEASURABLE),  # no configured pair has neurons
        "additive-beats-replacement": (0.6 - 0.2, 0.05, HOLDS),
        "residual-beats-neurons": (0.8 - 0.6, 0.05, HOLDS),  # res vs the main condition add
        # high-resource en de fr: no low-resource target
        "high-resource-easier": (None, 0.05, NOT_MEASURABLE),
        # en–de same family (0.8), en–fr different (0.4)
        "related-targets-easier": (0.8 - 0.4, 0.05, HOLDS),
        "cross-lingual-steering-helps": (3.0, 1.0, HOLDS),
        "fallback-language": (0.5, 0.5, HOLDS),  # the answers, not answers + distribution
    }
    assert set(got) == set(expected)
    for claim_id, (value, threshold, verdict) in expected.items():
        v, t, d = got[claim_id]
        assert (v is None) == (value is None), claim_id
        if value is not None:
            assert v == pytest.approx(value), claim_id
        assert (t, d) == (threshold, verdict), claim_id
    table_ = pl.read_parquet(tmp_path / "findings.parquet")
    assert table_["claim_id"].to_list() == list(expected)
    assert table_["verdict"].to_list() == [e[2] for e in expected.values()]
    text = (tmp_path / "findings.md").read_text()
    assert "Summary: 6 hold, 0 do not hold, 3 not measurable here." in text


# --------------------------------------------------------------------------- analysis config


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ({"selection": "b"}, "analysis.selection: 'b' is not one of forcing.selections"),
        ({"condition": "nope"}, "analysis.condition: 'nope' is not one of forcing.conditions"),
        (
            {"additive_condition": "nope"},
            "analysis.additive_condition: 'nope' is not one of forcing.conditions",
        ),
        (
            {"replacement_condition": "nope"},
            "analysis.replacement_condition: 'nope' is not one of forcing.conditions",
        ),
        ({"logit_lens": {"selection": "zz"}}, "analysis.logit_lens.selection: 'zz' is unknown"),
        ({"logit_lens": {"condition": "zz"}}, "analysis.logit_lens.condition: 'zz' is unknown"),
        (
            {"logit_lens": {"sources": ["en", "ko"]}},
            "analysis.logit_lens.sources: 'ko' is not a configured language",
        ),
        (
            {"logit_lens": {"targets": ["ja"]}},
            "analysis.logit_lens.targets: 'ja' is not a configured language",
        ),
    ],
)
def test_check_analysis_names_the_wrong_key(analysis, message):
    config = {**CONFIG, "selections": {"a": {}, "b": {}}, "analysis": analysis}
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        check_analysis(config)


def test_check_analysis_accepts_known_names():
    config = {
        **CONFIG,
        "selections": {"a": {}, "b": {}},
        "conditions": {**CONFIG["conditions"], "lens-only": [{"op": "add", "value": "mean"}]},
        "analysis": {
            "selection": "a",  # a forcing selection
            "condition": "add",
            "additive_condition": "add",
            "replacement_condition": "rep",
            # the lens may use any selection and condition, not only the forcing ones
            "logit_lens": {
                "selection": "b",
                "condition": "lens-only",
                "sources": ["en"],
                "targets": ["de", "fr"],
            },
        },
    }
    check_analysis(config)
    check_analysis(CONFIG)  # no analysis section at all
