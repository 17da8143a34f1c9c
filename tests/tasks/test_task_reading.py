"""Belebele: the standalone-letter parser, both row schemas, real files, accuracy."""

from __future__ import annotations

import json

import pytest

from langarith.experiments.tasks import reading
from langarith.experiments.tasks.letter_parser import parse_letter
from langarith.experiments.tasks.sources import BUILTIN_ROOT

from .task_helpers import assert_unique_ids, write_jsonl

CHOICES = ("More force", "More speed", "Less pressure", "Less finger motion")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("According to the passage, B", 1),  # the anchor's bug: first letter "A" -> A
        ("B", 1),
        (" b", 1),
        ("(C)", 2),
        ("D.", 3),
        ("A) More force", 0),
        ("C. Less pressure", 2),
        ("[D]", 3),
        ("The answer is C", 2),
        ("The correct answer is (D) because", 3),
        ("ANSWER: D", 3),
        ("answer: b.", 1),
        ("Option A is right", 0),
        ("I think A is right", 0),
        ("The answer is a dog", None),
        ("A dog barks.", None),
        ("Answer: According to the passage", None),
        ("Accordingly, nothing", None),
        ("A.M. radio", None),
        ("", None),
    ],
)
def test_parse_letter_accepts_only_standalone_letters(answer, expected):
    assert parse_letter(answer) == expected


def test_parse_letter_falls_back_to_option_text():
    assert parse_letter("More speed", CHOICES) == 1
    assert parse_letter("it is less pressure.", CHOICES) == 2
    assert parse_letter("Apparently, more speed", CHOICES) == 1
    assert parse_letter("Apparently", CHOICES) is None
    # a letter wins over a text match; one option inside another prefers the exact match
    assert parse_letter("B) More force", CHOICES) == 1
    assert parse_letter("cats", ("cats", "cats and dogs", "dogs", "birds")) == 0
    assert parse_letter("cats and dogs", ("cats", "cats and dogs", "dogs", "birds")) == 1
    assert parse_letter("cats or dogs", ("cats", "cats and dogs", "dogs", "birds")) is None


def test_belebele_converted_schema_has_900_questions(data_dir):
    for lang, first_question in (("en", "According to the passage"), ("de", "Was wäre")):
        source = {"kind": "local", "path": str(data_dir / "belebele" / "converted_schema")}
        items = reading.load_items(source, lang)
        assert len(items) == 900
        assert_unique_ids(items)
        first = items[0]
        assert first.item_id == "https://en.wikibooks.org/wiki/Accordion/Right_hand#q1"
        assert first.options == (" A", " B", " C", " D")
        assert first.gold_index == 0 and first.references == (first.choices[0],)
        assert f"\n\nQuestion: {first_question}" in first.prompt
        assert "\n\nA) " in first.prompt and "\nD) " in first.prompt
        assert first.prompt.endswith("\n\nAnswer:")
    en = reading.load_items(source | {"path": str(data_dir / "belebele/converted_schema")}, "en")
    assert en[0].prompt.startswith("Read the following English passage and answer the question.")
    de_ids = [i.item_id for i in items]
    assert de_ids == [i.item_id for i in en]  # the ids join the parallel languages


def test_hub_kind_reads_jsonl_through_datasets(data_dir, hf_cache):
    source = {
        "kind": "hub",
        "path": "json",
        "data_files": str(data_dir / "belebele" / "converted_schema" / "{flores}.jsonl"),
        "split": "train",
        "revision": None,
        "cache_dir": hf_cache,
    }
    local = {"kind": "local", "path": str(data_dir / "belebele" / "converted_schema")}
    assert reading.load_items(source, "de", 50) == reading.load_items(local, "de", 50)


def _original_rows() -> list[dict]:
    """The builtin English set rewritten in the original Belebele schema."""
    rows = []
    path = BUILTIN_ROOT / "reading" / "eng_Latn.jsonl"
    for line in path.read_text("utf-8").splitlines():
        passage = json.loads(line)
        for number, question in enumerate(passage["items"], start=1):
            answers = question["answers"]
            row = {
                "link": passage["metadata"]["extra"]["url"],
                "question_number": number,
                "flores_passage": passage["text"],
                "question": question["question"],
                "correct_answer_num": str(1 + [a["correct"] for a in answers].index(True)),
            }
            row |= {f"mc_answer{k}": a["text"] for k, a in enumerate(answers, start=1)}
            rows.append(row)
    return rows


def test_original_schema_gives_the_same_items(tmp_path, hf_cache):
    write_jsonl(tmp_path / "eng_Latn.jsonl", _original_rows())
    converted = reading.load_items({"kind": "builtin"}, "en")
    assert reading.load_items({"kind": "local", "path": str(tmp_path)}, "en") == converted
    hub = {
        "kind": "hub",
        "path": "json",
        "data_files": str(tmp_path / "{flores}.jsonl"),
        "split": "train",
        "cache_dir": hf_cache,
    }
    assert reading.load_items(hub, "en") == converted


def test_builtin_sets_load_with_balanced_gold_letters():
    for lang in ("en", "de"):
        items = reading.load_items({"kind": "builtin"}, lang)
        assert len(items) == 8
        assert_unique_ids(items)
        assert sorted(i.gold_index for i in items) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_accuracy_from_generations_and_from_logliks():
    items = reading.load_items({"kind": "builtin"}, "en", max_items=4)
    golds = [i.gold_index for i in items]
    letters = "ABCD"
    outputs = [letters[golds[0]], "According to the passage, nothing", "Answer unclear", "x"]
    assert reading.predict(items[0], outputs[0]) == golds[0]
    scores = reading.score(items, outputs)
    assert scores == {"accuracy": 25.0, "parse_rate": 25.0}
    logliks = [[-1.0, -2.0, -3.0, -4.0]] * 4  # always picks A
    expected = 100.0 * sum(g == 0 for g in golds) / 4
    assert reading.score_loglik(items, logliks) == {"accuracy": expected}
    ties = [[-1.0] * 4] * 4  # ties go to the first option
    assert reading.score_loglik(items, ties) == {"accuracy": expected}
    with pytest.raises(ValueError, match="4 options but 3 log-probabilities"):
        reading.score_loglik(items, [[0.0, 0.0, 0.0]] * 4)


def test_bad_inputs_name_the_culprit(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"fra_Latn\.jsonl.*'fr'"):
        reading.load_items(
            {"kind": "local", "path": str(data_dir / "belebele/converted_schema")}, "fr"
        )
    with pytest.raises(ValueError, match="'th'"):
        reading.load_items({"kind": "builtin"}, "th")
    rows = _original_rows()
    write_jsonl(
        tmp_path / "eng_Latn.jsonl", [{k: v for k, v in rows[0].items() if k != "mc_answer3"}]
    )
    with pytest.raises(ValueError, match=r"eng_Latn\.jsonl:1.*'mc_answer3'"):
        reading.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    write_jsonl(tmp_path / "eng_Latn.jsonl", [rows[0] | {"correct_answer_num": "5"}])
    with pytest.raises(ValueError, match="'correct_answer_num'"):
        reading.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    write_jsonl(tmp_path / "eng_Latn.jsonl", [{"passage": "p"}])
    with pytest.raises(ValueError, match=r"eng_Latn\.jsonl:1.*'items'.*'flores_passage'"):
        reading.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    answers = [{"text": t, "correct": True} for t in "abcd"]
    write_jsonl(
        tmp_path / "eng_Latn.jsonl",
        [{"text": "p", "items": [{"question": "q", "answers": answers}]}],
    )
    with pytest.raises(ValueError, match="question 1.*'correct' is true for 4 answers"):
        reading.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    write_jsonl(tmp_path / "eng_Latn.jsonl", [rows[0], rows[0]])
    with pytest.raises(ValueError, match="duplicate question id"):
        reading.load_items({"kind": "local", "path": str(tmp_path)}, "en")
