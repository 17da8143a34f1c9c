"""Native prompting (``langarith.experiments.native``): the requests and the per-language
scores against hand-counted frames."""

from __future__ import annotations

import polars as pl
import pytest

from langarith.experiments.native import native_requests, native_scores


def test_each_language_is_asked_its_own_questions():
    questions = {"en": ["How are you?", "Who are you?"], "de": ["Wie geht's?"], "fr": ["Qui?"]}
    reqs = native_requests(questions, ["de", "en"])
    assert [(r.source, r.target, r.question_idx, r.prompt) for r in reqs] == [
        ("de", "de", 0, "Q: Wie geht's? \nA:"),
        ("en", "en", 0, "Q: How are you? \nA:"),
        ("en", "en", 1, "Q: Who are you? \nA:"),
    ]
    with pytest.raises(ValueError, match="no forcing questions for source language 'mt'"):
        native_requests(questions, ["mt"])


def test_the_scores_are_the_shares_of_answers_in_the_language():
    judged = pl.DataFrame(
        {
            "target_lang": ["mt"] * 4 + ["de"] * 2,
            "pred_lang": ["en", "mt", "en", "it", "de", "de"],
            "success": [False, True, False, False, True, True],
            "success_and_fluent": [False, False, False, False, True, False],
        }
    )
    scores = native_scores(judged)
    assert scores.to_dicts() == [
        {"lang": "mt", "n": 4, "native_rate": 0.25, "native_fluent_rate": 0.0, "top_other": "en"},
        {"lang": "de", "n": 2, "native_rate": 1.0, "native_fluent_rate": 0.5, "top_other": None},
    ]


def test_a_tie_among_other_languages_names_the_first_code():
    judged = pl.DataFrame(
        {
            "target_lang": ["af"] * 3,
            "pred_lang": ["nl", "en", "af"],
            "success": [False, False, True],
            "success_and_fluent": [False, False, True],
        }
    )
    assert native_scores(judged)["top_other"].to_list() == ["en"]
