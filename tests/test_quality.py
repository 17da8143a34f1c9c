"""Repetition, distinct-n and perplexity of outputs; the success-and-fluent summary."""

from __future__ import annotations

import math

import polars as pl
import pytest
import torch
from conftest import load_tiny

from langarith.core.text_quality import (
    add_quality,
    distinct_n,
    longest_run,
    repetition,
    summarise,
    text_quality,
    units,
)
from langarith.experiments.quality import perplexities
from langarith.workflow.settings.quality import resolve_quality

LOOP = "I am fine. I am fine. I am fine. I am fine."
SENTENCE = "The weather is sunny today, and we are going to the beach."


def test_units_split_words_punctuation_and_cjk_characters():
    assert units("Hello, World!") == ["hello", ",", "world", "!"]
    assert units("我很好") == ["我", "很", "好"]
    assert units("Как дела?") == ["как", "дела", "?"]
    assert units("") == []


def test_a_repeated_string_is_repetitive():
    q = text_quality(LOOP)
    assert q["repetition"] == 1.0  # every trigram occurs more than once
    assert q["longest_run"] == 4  # "i am fine ." four times in a row
    assert q["distinct_1"] == pytest.approx(4 / 16)
    assert q["distinct_2"] == pytest.approx(4 / 15)


def test_a_normal_sentence_is_not():
    q = text_quality(SENTENCE)
    assert q["repetition"] == 0.0
    assert q["longest_run"] == 1
    assert q["distinct_1"] == pytest.approx(13 / 14)  # "the" twice
    assert q["distinct_2"] == 1.0


def test_an_empty_output_has_no_ngrams():
    q = text_quality("")
    assert q == {
        "n_units": 0,
        "repetition": 0.0,
        "longest_run": 0,
        "distinct_1": None,
        "distinct_2": None,
    }


def test_repetition_share_counts_positions_of_repeated_ngrams():
    seq = list("abcab")  # bigrams ab bc ca ab: the two "ab" repeat
    assert repetition(seq, 2) == pytest.approx(2 / 4)
    assert distinct_n(seq, 2) == pytest.approx(3 / 4)
    assert longest_run(list("xababab")) == 3
    assert longest_run(list("aaaa")) == 4


def test_summary_success_and_fluent():
    frame = pl.DataFrame(
        {
            "selection": ["s"] * 4,
            "condition": ["c"] * 4,
            "target_lang": ["de", "de", "fr", "fr"],
            "pred_lang": ["de", "de", "fr", "en"],
            "output": ["Guten Tag, wie geht es?", "ja ja ja ja ja ja", "Bonjour.", "Hello."],
        }
    )
    summary = summarise(add_quality(frame), max_repetition=0.5)
    overall = summary.filter(pl.col("target_lang") == "all").row(0, named=True)
    assert overall["n"] == 4
    assert overall["success_rate"] == pytest.approx(3 / 4)
    assert overall["fluent_rate"] == pytest.approx(3 / 4)  # the "ja" loop is not fluent
    assert overall["success_and_fluent"] == pytest.approx(2 / 4)
    de = summary.filter(pl.col("target_lang") == "de").row(0, named=True)
    assert de["success_and_fluent"] == pytest.approx(1 / 2)
    assert overall["median_perplexity"] is None


def test_resolve_quality_defaults():
    assert resolve_quality({}) is None
    q = resolve_quality({"quality": {"max_repetition": 0.3, "calibration": {"grid": [1]}}})
    assert q["max_repetition"] == 0.3 and q["ngram"] == 3 and "calibration" not in q


def test_perplexity_matches_a_direct_computation(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    texts = [SENTENCE, LOOP, "", SENTENCE, "Hallo"]
    rows = []  # the texts the model reads, one batch row each
    handle = model.base_model.register_forward_pre_hook(
        lambda _m, _args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    got = perplexities(model, tokenizer, texts, batch_size=2)
    handle.remove()
    assert got[2] is None  # empty output
    # duplicates computed once: 3 distinct non-empty texts in batches of 2
    assert rows == [2, 1]
    assert got[0] == got[3]
    for text, value in zip(texts, got):
        if not text:
            continue
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        assert ids[0, 0].item() == tokenizer.bos_token_id
        with torch.no_grad():
            logits = model(ids).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:])
        assert value == pytest.approx(math.exp(nll.item()), rel=1e-4)
