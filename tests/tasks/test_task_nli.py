"""XNLI: the anchor's label parser (and its strict variant), loaders, Russian label join."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from langarith.experiments.tasks import nli
from langarith.experiments.tasks.nli_parser import parse_nli_label

from .task_helpers import assert_unique_ids, write_jsonl

XNLI_LABELLED = ("ar", "de", "en", "es", "fr", "hi", "tr", "zh")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("1", 0),
        (" 2. Neutral", 1),
        ("3", 2),
        ("Entailment", 0),
        ("The relationship is a contradiction.", 2),
        ("neutral", 1),
        ("Entailment or contradiction", 0),  # the anchor's order: entailment first
        ("contradiction, not neutral", 2),
        ("Yes", 0),
        ("No.", 2),
        ("That is incorrect", 2),  # whole words: "incorrect" is not "correct"
        ("I don't know", None),
        ("Nothing", None),
        ("", None),
    ],
)
def test_parser_keeps_the_anchor_rules(answer, expected):
    assert parse_nli_label(answer) == expected


def test_strict_parser_drops_yes_no():
    assert parse_nli_label("Yes", strict=True) is None
    assert parse_nli_label("no", strict=True) is None
    assert parse_nli_label("2", strict=True) == 1
    assert parse_nli_label("Contradiction", strict=True) == 2


def test_xnli_local_has_1000_items_and_balanced_labels(data_dir):
    source = {"kind": "local", "path": str(data_dir / "xnli")}
    items = nli.load_items(source, "en")
    assert len(items) == 1000
    assert_unique_ids(items)
    assert Counter(i.gold_index for i in items) == {0: 333, 1: 334, 2: 333}
    first = items[0]
    assert (first.item_id, first.gold_index, first.references) == ("0000", 2, ("Contradiction",))
    assert first.options == (" Entailment", " Neutral", " Contradiction")
    assert first.prompt.startswith(
        "Given the following English premise and hypothesis, determine the relationship "
        "between them.\n\nPremise: Well, I wasn't even thinking about that"
    )
    assert first.prompt.endswith(
        "\n\nOptions:\n1. Entailment\n2. Neutral\n3. Contradiction\n\nAnswer:"
    )
    for lang in XNLI_LABELLED:
        assert len(nli.load_items(source, lang, max_items=10)) == 10


def test_russian_labels_are_joined_from_english_line_by_line(data_dir):
    source = {"kind": "local", "path": str(data_dir / "xnli")}
    with pytest.raises(ValueError, match=r"test-ru\.tsv:1.*'label'.*'ru'.*labels_from"):
        nli.load_items(source, "ru")
    english = nli.load_items(source, "en")
    by_code = nli.load_items(source | {"labels_from": "en"}, "ru")
    by_path = nli.load_items(
        source | {"labels_from": str(data_dir / "xnli" / "test.en.jsonl")}, "ru"
    )
    assert by_code == by_path
    assert len(by_code) == 1000
    assert [i.gold_index for i in by_code] == [i.gold_index for i in english]
    assert [i.item_id for i in by_code] == [i.item_id for i in english]
    assert "Given the following Russian premise" in by_code[0].prompt
    assert "Premise: Ну, я даже не думал об этом" in by_code[0].prompt
    assert len(nli.load_items(source | {"labels_from": "en"}, "ru", max_items=7)) == 7


def test_labels_from_must_have_the_same_length(data_dir, tmp_path):
    short = write_jsonl(tmp_path / "short.jsonl", [{"premise": "p", "hypothesis": "h", "label": 0}])
    source = {"kind": "local", "path": str(data_dir / "xnli"), "labels_from": str(short)}
    with pytest.raises(ValueError, match=r"short\.jsonl.*1 lines.*1000"):
        nli.load_items(source, "ru")
    one_file = {
        "kind": "local",
        "path": str(data_dir / "xnli" / "xtreme_unlabeled" / "test-ru.tsv"),
    }
    with pytest.raises(ValueError, match=r"test-ru\.tsv: labels_from 'en' needs a directory"):
        nli.load_items(one_file | {"labels_from": "en"}, "ru")
    with pytest.raises(ValueError, match=r"missing\.jsonl"):
        nli.load_items(source | {"labels_from": str(tmp_path / "missing.jsonl")}, "ru")


def test_hub_kind_reads_jsonl_through_datasets(data_dir, hf_cache):
    source = {
        "kind": "hub",
        "path": "json",
        "data_files": str(data_dir / "xnli" / "test.{lang}.jsonl"),
        "split": "train",
        "revision": None,
        "cache_dir": hf_cache,
    }
    local = {"kind": "local", "path": str(data_dir / "xnli")}
    assert nli.load_items(source, "fr") == nli.load_items(local, "fr")


def test_builtin_sets_are_balanced_and_parallel():
    labels = None
    for lang in ("en", "de", "es", "fr"):
        items = nli.load_items({"kind": "builtin"}, lang)
        assert len(items) == 12
        assert_unique_ids(items)
        assert Counter(i.gold_index for i in items) == {0: 4, 1: 4, 2: 4}
        labels = labels or [i.gold_index for i in items]
        assert [i.gold_index for i in items] == labels


def test_tsv_with_label_column_and_label_names(tmp_path):
    (tmp_path / "test-de.tsv").write_text("P1\tH1\tneutral\nP2\tH2\t2\n", "utf-8")
    items = nli.load_items({"kind": "local", "path": str(tmp_path)}, "de")
    assert [i.gold_index for i in items] == [1, 2]


def test_accuracy_overall_and_per_class():
    items = nli.load_items({"kind": "builtin"}, "en")  # 4 items per class
    outputs = [str(i.gold_index + 1) for i in items]
    assert nli.score(items, outputs) == {
        "accuracy": 100.0,
        "parse_rate": 100.0,
        "entailment": 100.0,
        "neutral": 100.0,
        "contradiction": 100.0,
    }
    yes = nli.score(items, ["Yes"] * 12)
    assert yes["accuracy"] == pytest.approx(100 / 3) and yes["entailment"] == 100.0
    assert yes["neutral"] == 0.0 and yes["contradiction"] == 0.0
    strict = nli.score(items, ["Yes"] * 12, strict=True)
    assert strict["accuracy"] == 0.0 and strict["parse_rate"] == 0.0
    only_neutral = [i for i in items if i.gold_index == 1]
    partial = nli.score(only_neutral, ["neutral"] * 4)
    assert partial["neutral"] == 100.0 and math.isnan(partial["entailment"])
    logliks = [[0.0, -1.0, -2.0]] * 12
    assert nli.score_loglik(items, logliks) == {"accuracy": pytest.approx(100 / 3)}


def test_bad_inputs_name_the_culprit(data_dir, tmp_path):
    with pytest.raises(ValueError, match=r"test\.it\.jsonl.*'it'"):
        nli.load_items({"kind": "local", "path": str(data_dir / "xnli")}, "it")
    write_jsonl(tmp_path / "test.en.jsonl", [{"premise": "p", "hypothesis": "h", "label": 7}])
    with pytest.raises(ValueError, match=r"test\.en\.jsonl:1.*'label' is 7"):
        nli.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    write_jsonl(tmp_path / "test.en.jsonl", [{"premise": "p", "label": 0}])
    with pytest.raises(ValueError, match=r"test\.en\.jsonl:1.*'hypothesis'"):
        nli.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    (tmp_path / "test.en.jsonl").write_text("not json\n", "utf-8")
    with pytest.raises(ValueError, match=r"test\.en\.jsonl:1: invalid JSON"):
        nli.load_items({"kind": "local", "path": str(tmp_path)}, "en")
    with pytest.raises(ValueError, match="labels_frm"):
        nli.load_items({"kind": "builtin", "labels_frm": "en"}, "de")
