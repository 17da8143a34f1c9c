"""Readers that name the file when it is not what it claims: ``<file>: <what is wrong>``."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl


def read_json(path: str | Path) -> object:
    """The JSON value in ``path``; ``ValueError`` naming the file if it is missing, not UTF-8 or
    not JSON (e.g. truncated by a crash before atomic writes, or edited by hand)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a JSON file (not UTF-8 text: {err.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        truncated = err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string")
        where = "it ends early (truncated?)" if truncated else f"{err.msg} at line {err.lineno}"
        raise ValueError(
            f"{path}: not valid JSON: {where}; if the workflow wrote it, delete it to have it "
            "rebuilt"
        ) from None


def read_json_object(path: str | Path) -> dict:
    """``read_json`` for a file that must hold a JSON object."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_parquet(path: str | Path, **kwargs) -> pl.DataFrame:
    """``polars.read_parquet`` naming the file when it is missing or not a Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        return pl.read_parquet(path, **kwargs)
    except (pl.exceptions.PolarsError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a readable Parquet file ({first})") from None


# Bytes of a safetensors header at most (the format's own limit is 100 MB).
_SAFETENSORS_HEADER_MAX = 100_000_000


def safetensors_problem(path: str | Path) -> str | None:
    """What is wrong with the safetensors file ``path`` (one line, naming the file), or None.

    Reads only the header (8 bytes of length, then JSON): a garbage, truncated or empty file is
    found before any weight is loaded."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return f"{path}: not a safetensors file ({size} bytes, no header)"
            length = int.from_bytes(head, "little")
            if length == 0 or length > min(size - 8, _SAFETENSORS_HEADER_MAX):
                return f"{path}: not a safetensors file (header length {length} in {size} bytes)"
            raw = handle.read(length)
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror})"
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return f"{path}: not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return f"{path}: not a safetensors file (its header is not a JSON object)"
    data = size - 8 - length
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not isinstance(offsets, list) or len(offsets) != 2:
            return f"{path}: not a safetensors file (tensor {name!r} has no data_offsets)"
        if not (isinstance(offsets[1], int) and 0 <= offsets[0] <= offsets[1] <= data):
            return (
                f"{path}: truncated or damaged: tensor {name!r} needs bytes up to {offsets[1]} "
                f"of {data} stored"
            )
    return None


def check_safetensors(path: str | Path) -> None:
    """``ValueError`` with :func:`safetensors_problem`'s line for a bad safetensors file."""
    problem = safetensors_problem(path)
    if problem is not None:
        raise ValueError(problem)
