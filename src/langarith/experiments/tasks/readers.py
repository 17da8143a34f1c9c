"""Reading the local task files (plain text, JSON, JSON lines, TSV) with one-line errors.

Every error is a ``ValueError`` that names the file and, where it helps, the language and
the 1-based line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def require_file(path: Path, lang: str) -> Path:
    """``path`` if it is a file, else ``ValueError`` naming the file and the language."""
    if not path.is_file():
        raise ValueError(f"{path}: file not found (language {lang!r})")
    return path


def read_lines(path: Path, lang: str) -> list[str]:
    """The lines of a UTF-8 text file, split on ``\\n`` only (never on other Unicode line
    breaks, which would break line alignment), without line ends; a final newline adds no
    empty line."""
    text = require_file(path, lang).read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_json(path: Path, lang: str) -> Any:
    """The parsed content of a JSON file."""
    try:
        return json.loads(require_file(path, lang).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err.msg} at line {err.lineno})") from None


def read_jsonl(path: Path, lang: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(read_lines(path, lang), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{number}: invalid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return rows


def read_tsv(path: Path, lang: str) -> list[list[str]]:
    """The tab-separated fields of every non-empty line."""
    return [line.split("\t") for line in read_lines(path, lang) if line.strip()]


def require_field(row: dict[str, Any], field: str, where: str) -> Any:
    """``row[field]``, or ``ValueError`` naming ``where`` (file:line or dataset) and the field."""
    if not isinstance(row, dict) or field not in row or row[field] is None:
        raise ValueError(f"{where}: missing field {field!r}")
    return row[field]


def require_text(row: dict[str, Any], field: str, where: str) -> str:
    """``row[field]`` as a string; ``ValueError`` naming ``where`` and the field otherwise."""
    value = require_field(row, field, where)
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {field!r} must be a string, got {type(value).__name__}")
    return value
