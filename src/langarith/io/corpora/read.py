"""Read one language of the configured corpus, whatever its kind."""

from __future__ import annotations

from collections.abc import Mapping

from langarith.io.corpora import Fetched


def read_language(corpus: Mapping, lang: str, inputs: Mapping[str, str]) -> Fetched:
    """Documents of ``lang`` from the corpus described by the config dict ``corpus``."""
    kind = corpus["kind"]
    if kind == "udhr":
        from langarith.io.corpora import udhr

        return Fetched(udhr.read_language(inputs["tarball"], lang))
    if kind == "local":
        from langarith.io.corpora import local

        pattern = corpus.get("pattern", "{lang}.txt")
        return Fetched(local.read_language(corpus["path"], lang, pattern))
    if kind == "hub":
        from langarith.io.corpora import hub

        return hub.read_language(corpus, lang)
    raise ValueError(f"corpus.kind: unknown corpus kind {kind!r}")


def alignment_key(kind: str, doc_id: str) -> str:
    """What a document of a ``kind`` corpus shares with its translations in the other languages:
    a UDHR document id (``preamble``, ``article-01``, ...: the same in every language), the line
    number of a local corpus (``{file}:{line}``: line ``n`` of every file is the same text when
    the files are parallel, as FLORES-200's are). A hub corpus has no such key."""
    if kind == "udhr":
        return doc_id
    if kind == "local":
        return doc_id.rsplit(":", 1)[-1]
    raise ValueError(f"corpus.kind: a {kind!r} corpus has no documents aligned across languages")
