"""Text corpora per language, written as Parquet (``doc_id``, ``text``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from langarith.io import write_parquet


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str


def write_corpus(documents: Sequence[Document], path: str | Path, source: str) -> None:
    """Write ``documents`` to ``path``; an empty corpus is an error naming ``source``."""
    kept = [d for d in documents if d.text.strip()]
    if not kept:
        raise ValueError(f"corpus {source} contains no text")
    frame = pl.DataFrame(
        {"doc_id": [d.doc_id for d in kept], "text": [d.text for d in kept]},
        schema={"doc_id": pl.String, "text": pl.String},
    )
    write_parquet(frame, path)


def read_corpus(path: str | Path) -> list[str]:
    return pl.read_parquet(path, columns=["text"])["text"].to_list()
