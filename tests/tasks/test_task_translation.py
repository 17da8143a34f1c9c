"""FLORES-200 translation: prompt, loaders (local, hub over local files, builtin), metrics."""

from __future__ import annotations

import re

import pytest

from langarith.tasks import translation
from langarith.tasks.mt_metrics import bleu_tokenizer, corpus_metrics, spbleu_available

from .task_helpers import assert_unique_ids, write_jsonl

BUILTIN_LANGS = ("de", "fr", "es", "zh", "ru", "en")


def test_prompt_adds_the_period_only_without_final_punctuation():
    make = translation.make_prompt
    assert make("Hello", "English", "German") == (
        "Translate this English sentence into German: Hello. Translation:"
    )
    assert make("Hello.", "English", "German") == (
        "Translate this English sentence into German: Hello. Translation:"
    )
    assert make('He said "yes."', "English", "French").endswith('"yes." Translation:')
    assert make("你好。", "Chinese", "English").endswith("你好。 Translation:")
    # the anchor's prompt always appends the period
    assert make("Hello.", "English", "German", anchor=True).endswith("Hello.. Translation:")


def test_flores_local_has_1012_aligned_lines(data_dir):
    source = {"kind": "local", "path": str(data_dir / "flores200_devtest")}
    items = translation.load_items(source, "de")
    english = (data_dir / "flores200_devtest" / "eng_Latn.txt").read_text("utf-8").splitlines()
    german = (data_dir / "flores200_devtest" / "deu_Latn.txt").read_text("utf-8").splitlines()
    assert len(items) == len(english) == 1012
    assert_unique_ids(items)
    assert items[0].item_id == "eng_Latn-deu_Latn:0000"
    assert items[0].target_lang == "de"
    for i in (0, 500, 1011):
        assert english[i] in items[i].prompt
        assert items[i].references == (german[i],)
        assert items[i].prompt.startswith("Translate this English sentence into German: ")
    # alignment: a 4-digit number of an English line reappears on the same German line
    years = [(i, y) for i, line in enumerate(english) for y in re.findall(r"\b1[89]\d\d\b", line)]
    assert len(years) > 30
    found = sum(y in items[i].references[0] for i, y in years)
    assert found / len(years) > 0.9


def test_flores_x_to_english_and_max_items(data_dir):
    source = {"kind": "local", "path": str(data_dir / "flores200_devtest"), "direction": "x-en"}
    items = translation.load_items(source, "zh", max_items=5)
    assert len(items) == 5
    assert items[0].item_id == "zho_Hans-eng_Latn:0000"
    assert items[0].prompt.startswith("Translate this Chinese sentence into English: ")
    assert items[0].target_lang == "en" and items[0].lang == "zh"
    assert items[0].references[0].startswith('"We now have 4-month-old mice')


def test_english_to_english_is_a_copy_task(data_dir):
    source = {"kind": "local", "path": str(data_dir / "flores200_devtest")}
    items = translation.load_items(source, "en", max_items=2)
    assert items[0].references[0] in items[0].prompt
    assert translation.score(items, [i.references[0] for i in items])["bleu"] == pytest.approx(100)


def test_hub_kind_reads_local_text_files_through_datasets(data_dir, hf_cache):
    source = {
        "kind": "hub",
        "path": "text",
        "data_files": str(data_dir / "flores200_devtest" / "{flores}.txt"),
        "split": "train",
        "revision": None,
        "cache_dir": hf_cache,
    }
    local = {"kind": "local", "path": str(data_dir / "flores200_devtest")}
    assert translation.load_items(source, "ru") == translation.load_items(local, "ru")


def test_hub_kind_reads_pair_rows(tmp_path, hf_cache):
    rows = [{"sentence_eng_Latn": "One cat.", "sentence_deu_Latn": "Eine Katze."}]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    source = {
        "kind": "hub",
        "path": "json",
        "data_files": str(path),
        "split": "train",
        "cache_dir": hf_cache,
    }
    [item] = translation.load_items(source, "de")
    assert item.prompt.endswith("One cat. Translation:")
    assert item.references == ("Eine Katze.",)


def test_builtin_set_loads_for_every_language():
    for lang in BUILTIN_LANGS:
        items = translation.load_items({"kind": "builtin"}, lang)
        assert len(items) == 12
        assert_unique_ids(items)
    assert "library" in translation.load_items({"kind": "builtin"}, "fr")[0].prompt


def test_bad_inputs_name_the_culprit(data_dir, tmp_path):
    flores = {"kind": "local", "path": str(data_dir / "flores200_devtest")}
    with pytest.raises(ValueError, match="'direction'"):
        translation.load_items({**flores, "direction": "de-fr"}, "de")
    with pytest.raises(ValueError, match="'xx'"):
        translation.load_items(flores, "xx")
    with pytest.raises(ValueError, match=r"ita_Latn\.txt.*'it'"):
        translation.load_items({"kind": "builtin"}, "it")
    with pytest.raises(ValueError, match="directory"):
        translation.load_items(
            {"kind": "local", "path": str(flores["path"]) + "/eng_Latn.txt"}, "de"
        )
    (tmp_path / "eng_Latn.txt").write_text("a\nb\n", "utf-8")
    (tmp_path / "deu_Latn.txt").write_text("a\n", "utf-8")
    with pytest.raises(ValueError, match=r"deu_Latn\.txt.*not aligned"):
        translation.load_items({"kind": "local", "path": str(tmp_path)}, "de")
    (tmp_path / "deu_Latn.txt").write_text("a\n\n", "utf-8")
    with pytest.raises(ValueError, match=r"deu_Latn\.txt:2: empty sentence"):
        translation.load_items({"kind": "local", "path": str(tmp_path)}, "de")
    (tmp_path / "eng_Latn.txt").write_text("", "utf-8")
    (tmp_path / "deu_Latn.txt").write_text("", "utf-8")
    with pytest.raises(ValueError, match="no sentences found for language 'de'"):
        translation.load_items({"kind": "local", "path": str(tmp_path)}, "de")
    with pytest.raises(ValueError, match="nope"):
        translation.load_items({"kind": "local", "path": str(tmp_path / "nope")}, "de")


def test_identical_output_scores_100_and_garbage_scores_low():
    items = translation.load_items({"kind": "builtin"}, "de")
    refs = [item.references[0] for item in items]
    perfect = translation.score(items, refs)
    assert perfect["bleu"] == pytest.approx(100)
    assert perfect["chrf++"] == pytest.approx(100)
    assert perfect["anchor_sentence_bleu"] == pytest.approx(1.0)
    bad = translation.score(items, ["xyz"] * len(items))
    assert bad["bleu"] == pytest.approx(0) and bad["chrf++"] < 5
    with pytest.raises(ValueError, match="12 items but 1 outputs"):
        translation.score(items, ["x"])


def test_score_item_and_hand_computed_sentence_bleu():
    [item] = translation.load_items({"kind": "builtin"}, "de", max_items=1)
    scores = translation.score_item(item, item.references[0])
    assert scores["bleu"] == pytest.approx(100) and scores["chrf++"] == pytest.approx(100)
    # "a b c d" vs "a b c e": precisions 3/4, 2/3, 1/2, and 0/1 smoothed by "exp" to 1/2 / 1
    import math

    expected = math.exp((math.log(3 / 4) + math.log(2 / 3) + math.log(1 / 2) + math.log(1 / 2)) / 4)
    got = corpus_metrics(["a b c d"], ["a b c e"], "en")["anchor_sentence_bleu"]
    assert got == pytest.approx(expected, abs=1e-4)


def test_cjk_references_use_a_cjk_tokenizer():
    assert bleu_tokenizer("zh") == "zh"
    assert bleu_tokenizer("ja") in ("ja-mecab", "char")
    assert bleu_tokenizer("ko") in ("ko-mecab", "char")
    assert bleu_tokenizer("bo") == "char"
    assert bleu_tokenizer("de") == "13a"
    items = translation.load_items({"kind": "builtin"}, "zh")
    # one wrong character: 13a sees one unsegmented token per sentence, the zh tokenizer does not
    outputs = [ref[:-2] + "X。" for ref in (item.references[0] for item in items)]
    zh = translation.score(items, outputs)
    assert 20 < zh["bleu"] < 100
    assert zh["anchor_sentence_bleu"] < 0.2


def test_spbleu_only_when_available_offline():
    items = translation.load_items({"kind": "builtin"}, "es", max_items=3)
    refs = [item.references[0] for item in items]
    scores = translation.score(items, refs)
    assert ("spbleu" in scores) == spbleu_available()
    assert "spbleu" not in translation.score(items, refs, spbleu=False)
    if not spbleu_available():
        with pytest.raises(ValueError, match="spBLEU"):
            translation.score(items, refs, spbleu=True)


def test_mixed_reference_languages_are_refused(data_dir):
    de = translation.load_items({"kind": "builtin"}, "de", max_items=1)
    fr = translation.load_items({"kind": "builtin", "direction": "x-en"}, "fr", max_items=1)
    with pytest.raises(ValueError, match="several languages"):
        translation.score(de + fr, ["a", "b"])
