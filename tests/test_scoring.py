"""The numbers users read, on frames small enough to compute by hand: forcing success rates and
target probabilities per cell and overall, the translation cells' language-ID rates, and every
task's ``<metric>_improvement`` rows. Each expected value is written out in the test, never
taken from the code under test."""

from __future__ import annotations

import math

import polars as pl
import pytest

from langarith.experiments.scoring import SCORE_SCHEMA, forcing_scores
from langarith.experiments.tasks.run import TASK_METRICS, cell_metrics, improvements, task_scores

# --------------------------------------------------------------------------- forcing


def langid_frame(rows) -> pl.DataFrame:
    """rows: (condition, source, target, pred_lang, target_prob)."""
    return pl.DataFrame(
        rows,
        schema=["condition", "source_lang", "target_lang", "pred_lang", "target_prob"],
        orient="row",
    )


LANGID = langid_frame(
    [
        # activate, en -> de: 2 of 3 answers German; probabilities 0.9, 0.6, 0.3
        ("activate", "en", "de", "de", 0.9),
        ("activate", "en", "de", "de", 0.6),
        ("activate", "en", "de", "en", 0.3),
        # activate, en -> fr: 1 of 2
        ("activate", "en", "fr", "en", 0.1),
        ("activate", "en", "fr", "fr", 0.5),
        # activate, de -> fr: 1 of 1
        ("activate", "de", "fr", "fr", 0.8),
        # baseline, en -> de: 0 of 2 (the answers stay English)
        ("baseline", "en", "de", "en", 0.0),
        ("baseline", "en", "de", "en", 0.2),
    ]
)


def by_key(scores: pl.DataFrame) -> dict[tuple, tuple[float, int]]:
    return {
        (r["condition"], r["test_lang"], r["steer_lang"], r["metric"]): (r["value"], r["n"])
        for r in scores.iter_rows(named=True)
    }


def test_forcing_success_rate_and_target_prob_per_cell_and_overall_by_hand():
    scores = forcing_scores(LANGID, "m", "lape-1")
    got = by_key(scores)
    expected = {
        ("activate", "en", "de", "success_rate"): (2 / 3, 3),
        ("activate", "en", "de", "target_prob"): ((0.9 + 0.6 + 0.3) / 3, 3),
        ("activate", "en", "fr", "success_rate"): (1 / 2, 2),
        ("activate", "en", "fr", "target_prob"): ((0.1 + 0.5) / 2, 2),
        ("activate", "de", "fr", "success_rate"): (1.0, 1),
        ("activate", "de", "fr", "target_prob"): (0.8, 1),
        # overall = mean over the 6 answers (4 right), not the mean of the 3 cells (0.72)
        ("activate", "all", "all", "success_rate"): (4 / 6, 6),
        ("activate", "all", "all", "target_prob"): ((0.9 + 0.6 + 0.3 + 0.1 + 0.5 + 0.8) / 6, 6),
        ("baseline", "en", "de", "success_rate"): (0.0, 2),
        ("baseline", "en", "de", "target_prob"): (0.1, 2),
        ("baseline", "all", "all", "success_rate"): (0.0, 2),
        ("baseline", "all", "all", "target_prob"): (0.1, 2),
    }
    assert set(got) == set(expected)
    for key, (value, n) in expected.items():
        assert got[key][0] == pytest.approx(value, abs=1e-12), key
        assert got[key][1] == n, key
    assert scores.columns == list(SCORE_SCHEMA)
    assert set(scores["model"]) == {"m"} and set(scores["selection"]) == {"lape-1"}
    assert set(scores["task"]) == {"forcing"}


def test_forcing_scores_are_sorted_and_keep_source_and_target_apart():
    scores = forcing_scores(LANGID, "m", "s")
    keys = scores.select("condition", "metric", "test_lang", "steer_lang").rows()
    assert keys == sorted(keys)
    # "de -> fr" is one cell with one answer: test_lang is the source, steer_lang the target
    cell = scores.filter((pl.col("test_lang") == "de") & (pl.col("metric") == "success_rate"))
    assert cell.select("steer_lang", "value", "n").rows() == [("fr", 1.0, 1)]
    assert scores.filter(pl.col("test_lang") == "fr").height == 0


def test_a_cell_where_every_answer_is_in_the_target_language_scores_one():
    frame = langid_frame([("c", "zh", "ru", "ru", 0.7), ("c", "zh", "ru", "ru", 0.9)])
    got = by_key(forcing_scores(frame, "m", "s"))
    assert got[("c", "zh", "ru", "success_rate")] == (1.0, 2)
    assert got[("c", "zh", "ru", "target_prob")][0] == pytest.approx(0.8)
    flipped = langid_frame([("c", "zh", "ru", "zh", 0.7), ("c", "zh", "ru", "en", 0.9)])
    assert by_key(forcing_scores(flipped, "m", "s"))[("c", "all", "all", "success_rate")] == (
        0.0,
        2,
    )


# --------------------------------------------------------------------------- tasks


class FakeIdentifier:
    """``predict`` as LanguageIdentifier's: objects with ``.lang``, here looked up in a table."""

    def __init__(self, table: dict[str, str]):
        self.table = table
        self.calls: list[list[str]] = []

    def predict(self, texts):
        self.calls.append(list(texts))

        class Prediction:
            def __init__(self, lang):
                self.lang = lang
                self.prob = 1.0

        return [Prediction(self.table[t]) for t in texts]


def translation_rows(condition, steer, outputs, refs, lang="de"):
    """English -> ``lang`` translations: test language and reference language ``lang``."""
    return [
        {
            "item_id": f"eng_Latn-x:{i:04d}",
            "task": "translation",
            "source_lang": lang,
            "target_lang": steer,
            "condition": condition,
            "prompt": f"p{i}",
            "output": out,
            "references": [ref],
            "reference_lang": lang,
        }
        for i, (out, ref) in enumerate(zip(outputs, refs))
    ]


REFS = [
    "Der Hund schläft im Garten.",
    "Wir essen heute Abend Suppe.",
    "Das Wetter ist schön.",
    "Er liest ein langes Buch.",
    "Die Stadt ist groß.",
]
# what the fake language identifier says each output is
LID = {
    REFS[0]: "de",
    REFS[1]: "de",
    REFS[2]: "de",
    REFS[3]: "de",
    REFS[4]: "de",
    "Le chien dort.": "fr",
    "Nous mangeons.": "fr",
    "The weather.": "en",
}


def test_translation_language_id_rates_count_reference_and_steered_language():
    outputs = [REFS[0], "Le chien dort.", "Nous mangeons.", "Le chien dort.", "The weather."]
    cell = pl.DataFrame(translation_rows("activate", "fr", outputs, REFS))
    identifier = FakeIdentifier(LID)
    got = cell_metrics("translation", cell, identifier)
    # predicted de, fr, fr, fr, en: 1 of 5 in the reference language (de), 3 of 5 in the
    # steered one (fr); the English answer counts for neither
    assert got["lid_reference_rate"] == pytest.approx(20.0)
    assert got["lid_steer_rate"] == pytest.approx(60.0)
    assert identifier.calls == [outputs]  # every output identified, once
    assert set(got) == set(TASK_METRICS["translation"])
    # without an identifier there are no language-ID rates
    assert "lid_reference_rate" not in cell_metrics("translation", cell)


def test_translation_metrics_are_100_for_exact_outputs_and_0_for_empty_ones():
    exact = cell_metrics(
        "translation",
        pl.DataFrame(translation_rows("baseline", "none", REFS, REFS)),
        FakeIdentifier(LID),
    )
    assert exact["bleu"] == pytest.approx(100.0)
    assert exact["chrf++"] == pytest.approx(100.0)
    assert exact["anchor_sentence_bleu"] == pytest.approx(1.0)  # the anchor's 0-1 scale
    assert exact["lid_reference_rate"] == pytest.approx(100.0)
    assert exact["lid_steer_rate"] == pytest.approx(0.0)  # nothing is in language "none"
    empty = cell_metrics(
        "translation",
        pl.DataFrame(translation_rows("activate", "fr", [""] * 5, REFS)),
    )
    assert empty["bleu"] == pytest.approx(0.0) and empty["chrf++"] == pytest.approx(0.0)


def improvement_rows(scores: pl.DataFrame) -> dict[tuple, float]:
    rows = scores.filter(pl.col("metric").str.ends_with("_improvement"))
    return {
        (r["selection"], r["condition"], r["test_lang"], r["steer_lang"], r["metric"]): r["value"]
        for r in rows.iter_rows(named=True)
    }


def assert_same(got: dict, expected: dict):
    assert set(got) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, abs=1e-9), key


def test_translation_improvements_by_hand():
    base = pl.DataFrame(translation_rows("baseline", "none", REFS, REFS))
    steered = pl.DataFrame(
        translation_rows("activate", "fr", [REFS[0], "Le chien dort.", *REFS[2:]], REFS)
        + translation_rows("activate", "de", REFS, REFS)
    )
    scores = task_scores(
        [("none", base), ("lape-1", steered)],
        "m",
        "translation",
        baseline="baseline",
        identifier=FakeIdentifier(LID),
    )
    got = improvement_rows(scores)
    # lid: baseline 100% German, 0% "none"; steered to fr: 4/5 German, 1/5 French;
    # steered to de: every output is the reference (100% German, and German is the steered one)
    fr = ("lape-1", "activate", "de", "fr")
    de = ("lape-1", "activate", "de", "de")
    assert got[(*fr, "lid_reference_rate_improvement")] == pytest.approx(80.0 - 100.0)
    assert got[(*fr, "lid_steer_rate_improvement")] == pytest.approx(20.0 - 0.0)
    assert got[(*de, "lid_reference_rate_improvement")] == pytest.approx(0.0)
    assert got[(*de, "lid_steer_rate_improvement")] == pytest.approx(100.0)
    for metric in ("bleu", "chrf++"):  # exact outputs: no change over the exact baseline
        assert got[(*de, f"{metric}_improvement")] == pytest.approx(0.0)
        assert got[(*fr, f"{metric}_improvement")] < 0  # one sentence wrong: worse
    assert len(got) == 2 * 5  # two steered cells × five metrics, the baseline has none


def qa_rows(condition, steer, outputs, lang, golds):
    return [
        {
            "item_id": f"{lang}{i}",
            "task": "qa",
            "source_lang": lang,
            "target_lang": steer,
            "condition": condition,
            "prompt": "p",
            "output": out,
            "references": golds[i],
            "reference_lang": lang,
        }
        for i, out in enumerate(outputs)
    ]


def test_qa_improvements_use_the_baseline_of_the_same_test_language_in_every_selection():
    golds = [["Paris"], ["blue"]]
    base = pl.DataFrame(
        qa_rows("baseline", "none", ["Paris", "red"], "en", golds)  # en: EM 50
        + qa_rows("baseline", "none", ["no", "no"], "de", golds)  # de: EM 0
    )
    a = pl.DataFrame(
        qa_rows("activate", "fr", ["Paris", "blue"], "en", golds)  # EM 100
        + qa_rows("activate", "fr", ["Paris", "no"], "de", golds)  # EM 50
    )
    b = pl.DataFrame(qa_rows("activate", "fr", ["no", "no"], "en", golds))  # EM 0
    scores = task_scores([("none", base), ("a", a), ("b", b)], "m", "qa", baseline="baseline")
    got = improvement_rows(scores)
    assert_same(
        got,
        {
            ("a", "activate", "en", "fr", "exact_match_improvement"): 100.0 - 50.0,
            ("a", "activate", "en", "fr", "f1_improvement"): 100.0 - 50.0,
            ("a", "activate", "de", "fr", "exact_match_improvement"): 50.0 - 0.0,
            ("a", "activate", "de", "fr", "f1_improvement"): 50.0 - 0.0,
            ("b", "activate", "en", "fr", "exact_match_improvement"): 0.0 - 50.0,
            ("b", "activate", "en", "fr", "f1_improvement"): 0.0 - 50.0,
        },
    )
    # without a baseline there is nothing to improve on
    assert not improvement_rows(task_scores([("a", a)], "m", "qa"))


READING_CHOICES = ("w", "x", "y", "z")


def choice_rows(task, condition, steer, outputs, golds, logliks, options, choices, lang="en"):
    return [
        {
            "item_id": f"{task}{i}",
            "task": task,
            "source_lang": lang,
            "target_lang": steer,
            "condition": condition,
            "prompt": "p",
            "output": out,
            "references": [choices[g]],
            "reference_lang": lang,
            "options": list(options),
            "choices": list(choices),
            "gold_index": g,
            "option_logliks": [float(v) for v in ll],
        }
        for i, (out, g, ll) in enumerate(zip(outputs, golds, logliks))
    ]


def test_reading_metrics_and_improvements_by_hand():
    from langarith.experiments.tasks.reading import OPTIONS

    golds = [1, 3]
    base = pl.DataFrame(
        choice_rows(
            "reading", "baseline", "none", ["B", "???"], golds,
            [[0, 1, 0, 0], [1, 0, 0, 0]], OPTIONS, READING_CHOICES,
        )
    )  # fmt: skip
    steered = pl.DataFrame(
        choice_rows(
            "reading", "activate", "de", ["B", "D"], golds,
            [[0, 1, 0, 0], [0, 0, 0, 1]], OPTIONS, READING_CHOICES,
        )
    )  # fmt: skip
    scores = task_scores([("none", base), ("s", steered)], "m", "reading", baseline="baseline")
    values = {(r["condition"], r["metric"]): r["value"] for r in scores.iter_rows(named=True)}
    # baseline: B right, ??? unparsed -> accuracy 50, parse rate 50; loglik argmax 1 (right), 0
    assert values[("baseline", "accuracy")] == pytest.approx(50.0)
    assert values[("baseline", "parse_rate")] == pytest.approx(50.0)
    assert values[("baseline", "accuracy_loglik")] == pytest.approx(50.0)
    # steered: both parsed and right, both loglik right
    assert values[("activate", "accuracy")] == pytest.approx(100.0)
    assert_same(
        improvement_rows(scores),
        {
            ("s", "activate", "en", "de", "accuracy_improvement"): 50.0,
            ("s", "activate", "en", "de", "accuracy_loglik_improvement"): 50.0,
            ("s", "activate", "en", "de", "parse_rate_improvement"): 50.0,
        },
    )


def test_nli_metrics_per_class_and_improvements_by_hand():
    from langarith.experiments.tasks.nli import CHOICES, OPTIONS

    golds = [0, 1, 2, 0]  # entailment, neutral, contradiction, entailment
    base = pl.DataFrame(
        choice_rows(
            "nli", "baseline", "none",
            ["Entailment", "contradiction", "Contradiction.", "maybe"], golds,
            [[1, 0, 0], [1, 0, 0], [1, 0, 0], [1, 0, 0]], OPTIONS, CHOICES,
        )
    )  # fmt: skip
    # parsed 0, 2, 2, None: right, wrong, right, unparsed
    # loglik argmax always 0: right, wrong, wrong, right
    got = cell_metrics("nli", base)
    assert got["accuracy"] == pytest.approx(50.0)
    assert got["parse_rate"] == pytest.approx(75.0)
    assert got["entailment"] == pytest.approx(50.0)  # items 0 (right) and 3 (unparsed)
    assert got["neutral"] == pytest.approx(0.0)
    assert got["contradiction"] == pytest.approx(100.0)
    assert got["accuracy_loglik"] == pytest.approx(50.0)
    assert set(got) == set(TASK_METRICS["nli"])
    steered = pl.DataFrame(
        choice_rows(
            "nli", "activate", "fr", ["entailment", "neutral", "neutral", "entailment"], golds,
            [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], OPTIONS, CHOICES,
        )
    )  # fmt: skip
    # steered: right, right, wrong, right -> accuracy 75, parse 100; per class 100, 100, 0
    scores = task_scores([("none", base), ("s", steered)], "m", "nli", baseline="baseline")
    cell = ("s", "activate", "en", "fr")
    assert_same(
        improvement_rows(scores),
        {
            (*cell, "accuracy_improvement"): 75.0 - 50.0,
            (*cell, "parse_rate_improvement"): 100.0 - 75.0,
            (*cell, "entailment_improvement"): 100.0 - 50.0,
            (*cell, "neutral_improvement"): 100.0 - 0.0,
            (*cell, "contradiction_improvement"): 0.0 - 100.0,
            (*cell, "accuracy_loglik_improvement"): 100.0 - 50.0,
        },
    )


def test_an_absent_nli_class_is_nan_and_so_is_its_improvement():
    from langarith.experiments.tasks.nli import CHOICES, OPTIONS

    base = pl.DataFrame(
        choice_rows("nli", "baseline", "none", ["entailment"], [0], [[1, 0, 0]], OPTIONS, CHOICES)
    )
    steered = pl.DataFrame(
        choice_rows("nli", "activate", "de", ["neutral"], [0], [[0, 1, 0]], OPTIONS, CHOICES)
    )
    scores = task_scores([("none", base), ("s", steered)], "m", "nli", baseline="baseline")
    got = improvement_rows(scores)
    assert math.isnan(got[("s", "activate", "en", "de", "neutral_improvement")])
    assert got[("s", "activate", "en", "de", "entailment_improvement")] == pytest.approx(-100.0)


def test_improvements_subtract_the_baseline_of_the_same_test_language_and_metric():
    rows = [
        ("m", "none", "qa", "baseline", "en", "none", "f1", 40.0, 2),
        ("m", "none", "qa", "baseline", "de", "none", "f1", 10.0, 2),
        ("m", "none", "qa", "baseline", "en", "none", "exact_match", 30.0, 2),
        ("m", "s", "qa", "activate", "en", "de", "f1", 45.0, 2),
        ("m", "s", "qa", "activate", "de", "en", "f1", 5.0, 2),
        ("m", "s", "qa", "activate", "en", "de", "exact_match", 30.0, 2),
        ("m", "s", "qa", "activate", "fr", "de", "f1", 99.0, 2),  # no fr baseline: no row
    ]
    scores = pl.DataFrame(rows, schema=SCORE_SCHEMA, orient="row")
    got = improvements(scores, "baseline")
    assert got.columns == scores.columns
    assert sorted(got.select("test_lang", "steer_lang", "metric", "value", "n").rows()) == [
        ("de", "en", "f1_improvement", 5.0 - 10.0, 2),
        ("en", "de", "exact_match_improvement", 0.0, 2),
        ("en", "de", "f1_improvement", 45.0 - 40.0, 2),
    ]
    assert set(got["condition"]) == {"activate"} and set(got["selection"]) == {"s"}
