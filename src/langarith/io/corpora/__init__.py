"""Text corpora per language, written as Parquet (``doc_id``, ``text``).

A corpus file may say that its fetch stopped at a budget (``cut_by``, e.g.
``corpus.max_chars=400000000``): the dataset may hold more text than the file. Recording uses
this to tell a language that is short of text from a budget that was set too low.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from langarith.io.atomic import write_parquet

_CUT_BY = "langarith.cut_by"


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str


@dataclass(frozen=True)
class Fetched:
    """The documents of one language; ``cut_by``: the budget (``key=value``) the fetch stopped
    at, ``None`` when it holds all the text the source has."""

    documents: list[Document]
    cut_by: str | None = None


def write_corpus(
    documents: Sequence[Document], path: str | Path, source: str, cut_by: str | None = None
) -> None:
    """Write ``documents`` to ``path``; an empty corpus is an error naming ``source``."""
    kept = [d for d in documents if d.text.strip()]
    if not kept:
        raise ValueError(f"corpus {source} contains no text")
    frame = pl.DataFrame(
        {"doc_id": [d.doc_id for d in kept], "text": [d.text for d in kept]},
        schema={"doc_id": pl.String, "text": pl.String},
    )
    write_parquet(frame, path, metadata={_CUT_BY: cut_by} if cut_by else None)


def corpus_cut_by(path: str | Path) -> str | None:
    """The budget the corpus file's fetch stopped at (``write_corpus``'s ``cut_by``), if any."""
    return pl.read_parquet_metadata(path).get(_CUT_BY)


def iter_corpus(path: str | Path, batch_rows: int = 1024) -> Iterator[str]:
    """The texts of a corpus file in order, read ``batch_rows`` at a time (bounded memory)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as parquet:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=["text"]):
            yield from batch.column(0).to_pylist()


def read_corpus(path: str | Path) -> list[str]:
    from langarith.io.readers import read_parquet

    return read_parquet(path, columns=["text"])["text"].to_list()
