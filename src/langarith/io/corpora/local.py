"""Plain-text corpora on disk: one file per language, one document per line."""

from __future__ import annotations

import codecs
from pathlib import Path

from langarith.core.languages import language
from langarith.io.corpora import Document

_CHUNK = 1 << 20  # bytes read at a time by text_problem


def corpus_file(directory: str | Path, lang: str, pattern: str = "{lang}.txt") -> Path:
    """The file of ``lang``; ``pattern`` may use ``{lang}`` (ISO 639-1) and ``{flores}``."""
    name = pattern.format(lang=lang, flores=language(lang).flores)
    return Path(directory) / name


def read_language(directory: str | Path, lang: str, pattern: str = "{lang}.txt") -> list[Document]:
    path = corpus_file(directory, lang, pattern)
    if not path.is_file():
        raise ValueError(f"corpus file {str(path)!r} for language {lang!r} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"corpus file {str(path)!r} is not valid UTF-8 ({err.reason})") from None
    for i, line in enumerate(lines):
        if "\x00" in line:
            raise ValueError(
                f"corpus file {str(path)!r}: line {i + 1} holds a NUL character (a binary file, "
                "not text)"
            )
    documents = [Document(f"{path.name}:{i + 1}", line.strip()) for i, line in enumerate(lines)]
    documents = [d for d in documents if d.text]
    if not documents:
        raise ValueError(f"corpus file {str(path)!r} for language {lang!r} is empty")
    return documents


def text_problem(path: str | Path) -> str | None:
    """What makes ``path`` unusable as a corpus file, or ``None``: the first bad byte, either not
    UTF-8 or a NUL (a binary file), with its byte offset and line; or no line with text. Reads
    the file once, in 1 MiB chunks, so a large corpus costs its reading time and no more
    memory than a chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, newlines, has_text = 0, 0, False
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(_CHUNK)
            final = not chunk
            nul = chunk.find(b"\x00")
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as err:
                # err.start counts from the bytes the decoder held back, then this chunk
                at = err.start - len(decoder.getstate()[0])  # in this chunk (< 0: before it)
                if nul < 0 or at < nul:
                    line = newlines + chunk[: max(at, 0)].count(b"\n") + 1
                    return f"not UTF-8 text ({err.reason} at byte {offset + at}, line {line})"
            if nul >= 0:
                line = newlines + chunk[:nul].count(b"\n") + 1
                return f"a binary file, not text (a NUL byte at offset {offset + nul}, line {line})"
            if not has_text:
                has_text = bool(text.strip())
            if final:
                break
            newlines += chunk.count(b"\n")
            offset += len(chunk)
    return None if has_text else "no line holds any text"
