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
