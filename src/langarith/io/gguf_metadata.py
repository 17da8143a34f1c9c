"""The layer count of a GGUF model read from its header, without loading or converting it.

A GGUF file starts with ``GGUF``, a version (uint32), the tensor and key-value counts (uint64;
uint32 in version 1) and the key-value pairs; ``general.architecture`` names the family and
``<architecture>.block_count`` is the number of decoder layers. The pairs come before the tensor
data, and the two keys come before the tokenizer's long arrays in files written by llama.cpp, so
reading stops after a few hundred bytes. The file may be given as the byte streams of its split
parts, in order (a package that ships a model in chunks).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

# value type -> struct format of a scalar (8: string, 9: array are read apart)
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9


class _Chained:
    """Sequential reads across the parts of a split file."""

    def __init__(self, paths: Iterable[str | Path]):
        self._paths = iter(paths)
        self._handle: BinaryIO | None = None

    def read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            if self._handle is None:
                path = next(self._paths, None)
                if path is None:
                    break
                self._handle = open(path, "rb")  # noqa: SIM115 - closed when exhausted
            chunk = self._handle.read(n - len(out))
            if not chunk:
                self._handle.close()
                self._handle = None
                continue
            out += chunk
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def _exact(stream: _Chained, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError("the GGUF header ends early")
    return data


def _unpack(stream: _Chained, fmt: str):
    return struct.unpack(fmt, _exact(stream, struct.calcsize(fmt)))[0]


def _string(stream: _Chained, length_fmt: str) -> str:
    return _exact(stream, _unpack(stream, length_fmt)).decode("utf-8", errors="replace")


def _value(stream: _Chained, kind: int, length_fmt: str):
    if kind in _SCALARS:
        return _unpack(stream, _SCALARS[kind])
    if kind == _STRING:
        return _string(stream, length_fmt)
    if kind == _ARRAY:
        item, count = _unpack(stream, "<I"), _unpack(stream, length_fmt)
        for _ in range(count):  # skipped: no array holds what is looked for
            _value(stream, item, length_fmt)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")


def gguf_block_count(parts: Iterable[str | Path]) -> int | None:
    """``<architecture>.block_count`` of the GGUF file made of ``parts`` (one path for a whole
    file); ``None`` when the header has no such key. ``ValueError`` naming the first part when
    it is not a GGUF file."""
    parts = list(parts)
    stream = _Chained(parts)
    try:
        if stream.read(4) != b"GGUF":
            raise ValueError(f"{parts[0]}: not a GGUF file (no GGUF magic)")
        version = _unpack(stream, "<I")
        length_fmt = "<I" if version == 1 else "<Q"
        _unpack(stream, length_fmt)  # tensor count
        n_kv = _unpack(stream, length_fmt)
        architecture, counts = None, {}
        for _ in range(n_kv):
            key = _string(stream, length_fmt)
            value = _value(stream, _unpack(stream, "<I"), length_fmt)
            if key == "general.architecture":
                architecture = value
            elif key.endswith(".block_count"):
                counts[key] = value
            if architecture and f"{architecture}.block_count" in counts:
                return int(counts[f"{architecture}.block_count"])
        return None
    except ValueError as err:
        if str(err).startswith(str(parts[0])):
            raise
        raise ValueError(f"{parts[0]}: {err}") from None
    finally:
        stream.close()
