"""FLORES-200 translation: prompt, loaders (local, hub over local files, builtin), metrics."""

from __future__ import annotations

import re

import pytest

from langarith.experiments.tasks import translation
from langarith.experiments.tasks.mt_metrics import bleu_tokenizer, corpus_metrics, spbleu_available

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


# The fields of openlanguagedata/flores_plus, in its order
FLORES_PLUS_FIELDS = (
    "id",
    "iso_639_3",
    "iso_15924",
    "glottocode",
    "text",
    "url",
    "domain",
    "topic",
    "has_image",
    "has_hyperlink",
    "last_updated",
)


def flores_plus_repo(root, data_dir, n=6, ids=None):
    """A local dataset repository in the layout of ``openlanguagedata/flores_plus``: one config
    per language named by its FLORES+ code (splits ``dev`` and ``devtest``, parquet) and the
    all-language ``default`` config, rows with FLORES+'s fields. Each ``devtest`` holds the first
    ``n`` lines of the shared FLORES-200 devtest file, stored in reverse order for Chinese so
    that only the ``id`` pairs them; ``ids`` overrides the ids of one language."""
    import polars as pl

    langs = {"eng_Latn": "eng_Latn", "deu_Latn": "deu_Latn", "cmn_Hans": "zho_Hans"}
    configs = []
    for plus, flores200 in langs.items():
        path = data_dir / "flores200_devtest" / f"{flores200}.txt"
        lines = path.read_text("utf-8").splitlines()[:n]
        order = list(range(n))[::-1] if plus == "cmn_Hans" else list(range(n))
        iso, script = plus.split("_")
        for split, texts in (("devtest", lines), ("dev", [f"dev {i}" for i in range(n)])):
            rows = {
                "id": [(ids or {}).get(plus, list(range(n)))[i] for i in order],
                "iso_639_3": [iso] * n,
                "iso_15924": [script] * n,
                "glottocode": ["glot1234"] * n,
                "text": [texts[i] for i in order],
                "url": [f"https://en.wikinews.org/wiki/{i}" for i in order],
                "domain": ["wikinews"] * n,
                "topic": ["science"] * n,
                "has_image": [0] * n,
                "has_hyperlink": [1] * n,
                "last_updated": ["2.0"] * n,
            }
            assert tuple(rows) == FLORES_PLUS_FIELDS
            (root / split).mkdir(parents=True, exist_ok=True)
            pl.DataFrame(rows).write_parquet(root / split / f"{plus}.parquet")
        files = [f"  - split: {s}\n    path: {s}/{plus}.parquet\n" for s in ("dev", "devtest")]
        configs.append(f"- config_name: {plus}\n  data_files:\n" + "".join(files))
    default = [f"  - split: {s}\n    path: {s}/*.parquet\n" for s in ("dev", "devtest")]
    configs.append("- config_name: default\n  data_files:\n" + "".join(default))
    (root / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n", "utf-8")
    return root


def test_flores_plus_layout_gives_the_flores200_items(data_dir, tmp_path, hf_cache):
    repo = flores_plus_repo(tmp_path / "flores_plus", data_dir)
    hub = {"kind": "hub", "path": str(repo), "config": "{flores_plus}", "cache_dir": hf_cache}
    local = {"kind": "local", "path": str(data_dir / "flores200_devtest")}
    for lang in ("zh", "de", "en"):  # zh: config cmn_Hans, rows stored in reverse order
        items = translation.load_items({**hub, "split": "devtest"}, lang)
        assert items == translation.load_items(local, lang, max_items=6)
    assert items[0].item_id == "eng_Latn-eng_Latn:0000"
    # the default split is devtest; x-en reads both sides the same way
    back = translation.load_items({**hub, "direction": "x-en"}, "zh")
    assert back == translation.load_items({**local, "direction": "x-en"}, "zh", max_items=6)
    # the all-language config: each language's rows picked by iso_639_3 / iso_15924
    every = translation.load_items({**hub, "config": "default"}, "zh")
    assert every == translation.load_items(local, "zh", max_items=6)


def test_flores_plus_rows_of_another_language_or_other_ids_are_errors(data_dir, tmp_path, hf_cache):
    repo = flores_plus_repo(tmp_path / "ids", data_dir, ids={"deu_Latn": [0, 1, 2, 3, 4, 9]})
    hub = {"kind": "hub", "path": str(repo), "cache_dir": hf_cache}
    wrong_language = r"no rows of cmn_Hans \(language 'zh'\); rows are deu_Latn"
    with pytest.raises(ValueError, match=wrong_language):
        translation.load_items({**hub, "config": "deu_Latn"}, "zh")
    with pytest.raises(ValueError, match=r"ids of 'de' and 'en' differ \(e.g. \[5, 9\]\)"):
        translation.load_items({**hub, "config": "{flores_plus}"}, "de")


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
