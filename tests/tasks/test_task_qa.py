"""XQuAD: official SQuAD v1.1 EM/F1 on hand-computed cases, loaders on the real files."""

from __future__ import annotations

import json

import pytest

from langarith.experiments.tasks import qa
from langarith.experiments.tasks.base import TaskItem
from langarith.experiments.tasks.sources import BUILTIN_ROOT
from langarith.experiments.tasks.squad_metric import exact_match, f1_score, normalize_answer

from .task_helpers import assert_unique_ids, write_jsonl

XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


def test_official_normalisation():
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("«Paris»") == "«paris»"  # official v1.1: ASCII punctuation only
    assert normalize_answer("北京，中国。", "zh") == "北京中国"


def test_hand_computed_em_and_f1():
    # "The cat" -> "cat"; "a cat sat" -> "cat sat": 1 common token, P = 1/1, R = 1/2
    assert exact_match("The cat", ["a cat sat"]) == 0.0
    assert f1_score("The cat", ["a cat sat"]) == pytest.approx(2 / 3)
    assert exact_match("the cat sat", ["A cat sat."]) == 1.0
    # multiset counting: "cat cat" vs "cat" has 1 common token, P = 1/2, R = 1 (a set gives 1.0)
    assert f1_score("cat cat", ["cat"]) == pytest.approx(2 / 3)
    # max over gold answers
    assert exact_match("Paris", ["London", "paris"]) == 1.0
    assert f1_score("in London town", ["London", "Paris"]) == pytest.approx(0.5)
    assert f1_score("", ["cat"]) == 0.0
    assert f1_score("the", ["a"]) == 0.0  # both normalise to nothing: 0 in v1.1


def test_character_f1_for_languages_without_spaces():
    # 北京市 vs 北京: 2 common characters, P = 2/3, R = 1 -> F1 = 0.8
    assert f1_score("北京市", ["北京"], "zh") == pytest.approx(0.8)
    assert exact_match("北京 市", ["北京市"], "zh") == 1.0
    assert f1_score("北京市", ["北京"], "en") == 0.0  # one whitespace token each, different


def test_corpus_score_is_a_percentage():
    items = [TaskItem("1", "en", "p", ("a cat sat",)), TaskItem("2", "en", "p", ("dog",))]
    scores = qa.score(items, ["The cat", "the dog"])
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert qa.score_item(items[1], "dog.") == {"exact_match": 1.0, "f1": 1.0}
    with pytest.raises(ValueError, match="2 items but 1 outputs"):
        qa.score(items, ["x"])


def test_xquad_local_has_1190_questions(data_dir):
    source = {"kind": "local", "path": str(data_dir / "xquad")}
    items = qa.load_items(source, "en")
    assert len(items) == 1190
    assert_unique_ids(items)
    first = items[0]
    assert first.item_id == "56beb4343aeaaa14008c925b"
    assert first.references == ("308",)
    assert first.prompt.startswith(
        "Answer the question based on the English context provided. "
        "Extract the exact answer from the context.\n\nContext: The Panthers defense"
    )
    assert first.prompt.endswith(
        "\n\nQuestion: How many points did the Panthers defense surrender?\n\nAnswer:"
    )
    assert qa.score(items, [i.references[0] for i in items]) == {"exact_match": 100.0, "f1": 100.0}
    assert [i.item_id for i in qa.load_items(source, "en", max_items=3)] == [
        i.item_id for i in items[:3]
    ]


def test_every_xquad_language_loads_with_its_name(data_dir):
    source = {"kind": "local", "path": str(data_dir / "xquad")}
    for lang in XQUAD_LANGS:
        items = qa.load_items(source, lang, max_items=2)
        assert len(items) == 2
    assert "the Thai context" in qa.load_items(source, "th", max_items=1)[0].prompt
    single_file = {"kind": "local", "path": str(data_dir / "xquad" / "xquad.de.json")}
    assert len(qa.load_items(single_file, "de")) == 1190


def test_hub_kind_reads_squad_json_through_datasets(data_dir, hf_cache):
    source = {
        "kind": "hub",
        "path": "json",
        "data_files": str(data_dir / "xquad" / "xquad.{lang}.json"),
        "field": "data",
        "split": "train",
        "revision": None,
        "cache_dir": hf_cache,
    }
    local = {"kind": "local", "path": str(data_dir / "xquad")}
    assert qa.load_items(source, "es") == qa.load_items(local, "es")


def test_hub_kind_reads_flat_rows_like_google_xquad(tmp_path, hf_cache):
    rows = [
        {
            "id": "q1",
            "context": "Tom has two cats.",
            "question": "How many cats?",
            "answers": {"text": ["two", "two cats"], "answer_start": [8, 8]},
        },
    ]
    path = write_jsonl(tmp_path / "flat.jsonl", rows)
    source = {
        "kind": "hub",
        "path": "json",
        "data_files": str(path),
        "cache_dir": hf_cache,
        "split": "train",
    }
    [item] = qa.load_items(source, "en")
    assert item.item_id == "q1" and item.references == ("two", "two cats")


def test_builtin_sets_load_and_answers_are_spans():
    for lang in ("en", "de", "es"):
        items = qa.load_items({"kind": "builtin"}, lang)
        assert len(items) == 6
        assert_unique_ids(items)
    for path in sorted((BUILTIN_ROOT / "qa").glob("xquad.*.json")):
        for article in json.loads(path.read_text("utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                for question in paragraph["qas"]:
                    for answer in question["answers"]:
                        start = answer["answer_start"]
                        assert paragraph["context"][start:].startswith(answer["text"])


def test_bad_inputs_name_the_culprit(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"xquad\.fr\.json.*'fr'"):
        qa.load_items({"kind": "local", "path": str(data_dir / "xquad")}, "fr")
    broken = {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "x", "question": "q"}]}]}]}
    (tmp_path / "xquad.en.json").write_text(json.dumps(broken), "utf-8")
    with pytest.raises(ValueError, match=r"xquad\.en\.json.*question x.*'answers'"):
        qa.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    (tmp_path / "xquad.de.json").write_text('{"version": "1.1"}', "utf-8")
    with pytest.raises(ValueError, match=r"xquad\.de\.json.*'data'"):
        qa.load_items({"kind": "local", "path": str(tmp_path)}, "de")
    (tmp_path / "xquad.es.json").write_text("{oops", "utf-8")
    with pytest.raises(ValueError, match=r"xquad\.es\.json.*invalid JSON"):
        qa.load_items({"kind": "local", "path": str(tmp_path)}, "es")
    with pytest.raises(ValueError, match="missing.json"):
        qa.load_items(
            {"kind": "hub", "path": "json", "data_files": str(tmp_path / "missing.json")}, "en"
        )
