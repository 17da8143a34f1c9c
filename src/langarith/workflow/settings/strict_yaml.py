"""Read YAML (or JSON) config files the way Snakemake does, but refuse duplicate keys.

PyYAML and ``json`` silently keep the last of two equal keys in a mapping, so a config with two
conditions called ``activate`` would run only the second. ``find_duplicate_key`` re-reads a file
and reports the first duplicate key instead: file, line and the mapping's dotted path.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ValueError):
    """A mapping in a config file holds the same key twice; the message is one line."""


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "the top level"


def _walk(node: yaml.Node, path: tuple[str, ...]) -> None:
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path[:-1], f"{path[-1]}[{i}]") if path else (f"[{i}]",))
        return
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:  # `<<: *anchor` - keys merged in may be overridden
            continue
        if isinstance(key_node, yaml.ScalarNode):
            key = (key_node.tag, key_node.value)
            if key in seen:
                first = seen[key].start_mark.line + 1
                raise DuplicateKeyError(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key_node.value!r} in "
                    f"{_dotted(path)} (first at line {first}; YAML keeps only the last one)"
                )
            seen[key] = key_node
            _walk(value_node, (*path, str(key_node.value)))
        else:
            _walk(value_node, (*path, "?"))


def _json_pairs(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"duplicate key {key!r} (JSON keeps only the last one)")
        out[key] = value
    return out


def check_duplicate_keys(path: str | Path) -> None:
    """Raise ``DuplicateKeyError`` (message starting with the file) for a repeated mapping key.

    Like Snakemake, the file is read as JSON first, then as YAML. Text that is neither is left
    for Snakemake to report.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        json.loads(text, object_pairs_hook=_json_pairs)
        return
    except DuplicateKeyError as err:
        raise DuplicateKeyError(f"{path}: {err}") from None
    except ValueError:
        pass  # not JSON: read it as YAML
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return
    try:
        for document in documents:
            if document is not None:
                _walk(document, ())
    except DuplicateKeyError as err:
        raise DuplicateKeyError(f"{path}:{err}".replace(":line ", ":", 1)) from None


def find_duplicate_key(path: str | Path) -> str | None:
    """A one-line description of the first duplicate key in ``path``, or None.

    Files Snakemake renders with YTE (``__use_yte__: true``) and unreadable files are skipped
    (Snakemake reports the latter itself).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "__use_yte__" in text:
        return None
    try:
        check_duplicate_keys(path)
    except DuplicateKeyError as err:
        return str(err)
    return None


def config_file_problem(path: str | Path) -> str | None:
    """What stops ``path`` from being a config file, as ``file:line: what`` (or ``file: what``),
    or None: missing, unreadable, binary or not UTF-8, empty, not JSON/YAML (a tab in the
    indentation, a syntax error), or not a mapping of keys at the top level.

    Snakemake reads ``--configfile`` before the Snakefile runs, so the workflow never sees these;
    ``python -m langarith.workflow.settings FILE`` reports them before a run (README, "What
    happens when things go wrong").
    """
    path = Path(path)
    if not path.exists():
        return f"{path}: no such file"
    if not path.is_file():
        return f"{path}: not a file"
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror})"
    if b"\x00" in data:
        offset = data.index(0)
        return f"{path}: a binary file, not a JSON or YAML config (a NUL byte at offset {offset})"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        return f"{path}:{line}: not UTF-8 text ({err.reason})"
    if not text.strip():
        return f"{path}: empty (a config file is a mapping of keys such as languages, models)"
    try:
        documents = [json.loads(text)]  # Snakemake tries JSON first
    except ValueError:
        documents = None
    try:
        documents = documents if documents is not None else list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        where = f"{path}:{line}" if line else str(path)
        row = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
        indent = row[: len(row) - len(row.lstrip())]
        if "\t" in indent or "'\\t'" in str(err.problem):
            return f"{where}: a tab in the indentation (YAML indents with spaces only)"
        return f"{where}: not valid YAML ({err.problem})"
    except yaml.YAMLError as err:
        return f"{path}: not valid YAML ({err})"
    documents = [d for d in documents if d is not None]
    if len(documents) != 1:
        what = (
            "holds no settings (only comments)" if not documents else "holds several YAML documents"
        )
        return f"{path}: {what}"
    if not isinstance(documents[0], dict):
        kind = type(documents[0]).__name__
        return (
            f"{path}:1: the top level is a {kind}, not a mapping of keys (languages:, models:, ...)"
        )
    return None
