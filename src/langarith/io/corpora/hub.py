"""Corpora from the Hugging Face hub through ``datasets`` streaming (CulturaX, Wikipedia, ...).

Config: ``dataset`` (path), ``configs`` (language -> config name; default: the ISO code),
``split`` (default ``train``), ``text_field`` (default ``text``), ``revision``, and the budget
that bounds what is streamed: ``max_chars`` (characters per language) and/or ``max_documents``.
``dataset`` may also be a local builder such as ``json`` with ``data_files`` (how the tests
exercise this path offline).

The budget is in characters because the corpus is fetched once for every model, without a
tokenizer. The token budget (``recording.max_tokens``) is exact and applied when a model
records: its tokenizer encodes the documents as they are read and stops at the budget
(``langarith.model.recording.record_corpus``). ``max_chars`` must therefore give every model at
least ``recording.max_tokens`` tokens; if it does not, recording fails naming ``corpus.max_chars``.
The stream is read row by row and left as soon as the budget is reached, so memory holds the
budget, never the dataset. A language whose dataset ends first keeps all of it, and the log
says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from langarith.io.corpora import Document, Fetched

log = logging.getLogger("langarith")


def open_stream(corpus: Mapping, lang: str) -> Iterable[Mapping]:
    """The rows of ``lang``'s dataset, streamed (nothing is downloaded up front)."""
    import datasets

    config_name = (corpus.get("configs") or {}).get(lang, lang)
    kwargs = {"split": corpus.get("split", "train"), "streaming": True}
    if corpus.get("revision"):
        kwargs["revision"] = corpus["revision"]
    if corpus.get("data_files"):
        files = corpus["data_files"]
        kwargs["data_files"] = files.get(lang) if isinstance(files, Mapping) else files
        return datasets.load_dataset(corpus["dataset"], **kwargs)
    return datasets.load_dataset(corpus["dataset"], config_name, **kwargs)


def take_documents(
    rows: Iterable[Mapping],
    field: str,
    source: str,
    max_documents: int | None = None,
    max_chars: int | None = None,
) -> Fetched:
    """Documents from ``rows`` until ``max_documents`` or ``max_chars`` is reached (the row
    that reaches it is kept; no further row is read), else the whole stream."""
    documents: list[Document] = []
    n_chars = 0
    for i, row in enumerate(rows):
        if field not in row:
            raise ValueError(f"corpus {source}: rows have no field {field!r}")
        text = row[field] or ""
        documents.append(Document(doc_id=str(row.get("id", i)), text=text))
        n_chars += len(text)
        if max_documents and len(documents) >= max_documents:
            return Fetched(documents, f"corpus.max_documents={max_documents}")
        if max_chars and n_chars >= max_chars:
            return Fetched(documents, f"corpus.max_chars={max_chars}")
    if not documents:
        raise ValueError(f"corpus {source} has no documents")
    if max_documents or max_chars:
        log.warning(
            "corpus %s: less text than the budget (max_documents %s, max_chars %s): "
            "the whole dataset is used, %d documents, %d characters",
            source,
            max_documents,
            max_chars,
            len(documents),
            n_chars,
        )
    return Fetched(documents)


def read_language(corpus: Mapping, lang: str) -> Fetched:
    """``lang``'s documents; a failure to reach the dataset (gated, missing, no such revision
    or config, offline) is one ``ValueError`` line naming it and what to do."""
    from langarith.io.hub_errors import hub_error_line

    source = f"{corpus['dataset']!r} ({lang})"
    try:
        return take_documents(
            open_stream(corpus, lang),
            corpus.get("text_field", "text"),
            source,
            corpus.get("max_documents"),
            corpus.get("max_chars"),
        )
    except Exception as err:  # streaming: the hub may fail on the first rows, not on open
        line = hub_error_line(err, "dataset", corpus["dataset"], corpus.get("revision"), "corpus")
        if line is None:
            raise
        raise ValueError(f"{line} (language {lang!r})") from err
