"""Plain-text corpora on disk: one file per language, one document per line."""

from __future__ import annotations

from pathlib import Path

from langarith.core.languages import language
from langarith.io.corpora import Document


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
