"""Corpora from the Hugging Face hub through ``datasets`` streaming (CulturaX, Wikipedia, ...).

Config: ``dataset`` (path), ``configs`` (language -> config name; default: the ISO code),
``split`` (default ``train``), ``text_field`` (default ``text``), ``revision``, and
``max_documents`` / ``max_chars`` to bound what is streamed. ``dataset`` may also be a local
builder such as ``json`` with ``data_files`` (how the tests exercise this path offline).
"""

from __future__ import annotations

from collections.abc import Mapping

from langarith.corpora import Document


def read_language(corpus: Mapping, lang: str) -> list[Document]:
    import datasets

    config_name = (corpus.get("configs") or {}).get(lang, lang)
    kwargs = {"split": corpus.get("split", "train"), "streaming": True}
    if corpus.get("revision"):
        kwargs["revision"] = corpus["revision"]
    if corpus.get("data_files"):
        files = corpus["data_files"]
        kwargs["data_files"] = files.get(lang) if isinstance(files, Mapping) else files
        stream = datasets.load_dataset(corpus["dataset"], **kwargs)
    else:
        stream = datasets.load_dataset(corpus["dataset"], config_name, **kwargs)
    field = corpus.get("text_field", "text")
    max_docs = corpus.get("max_documents")
    max_chars = corpus.get("max_chars")
    documents: list[Document] = []
    n_chars = 0
    for i, row in enumerate(stream):
        if field not in row:
            raise ValueError(f"corpus {corpus['dataset']!r} ({lang}): rows have no field {field!r}")
        text = row[field] or ""
        documents.append(Document(doc_id=str(row.get("id", i)), text=text))
        n_chars += len(text)
        if (max_docs and len(documents) >= max_docs) or (max_chars and n_chars >= max_chars):
            break
    if not documents:
        raise ValueError(f"corpus {corpus['dataset']!r} has no documents for language {lang!r}")
    return documents
