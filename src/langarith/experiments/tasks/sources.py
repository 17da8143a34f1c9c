"""The ``source`` dict of a task (from config): validation, local paths, Hugging Face loading.

Three kinds:

* ``{"kind": "hub", "path": ..., "config": ..., "split": ..., "revision": ...}`` loads with
  ``datasets.load_dataset(path, config, split=split, revision=revision)``. ``data_files``,
  ``data_dir``, ``field`` and ``cache_dir`` are passed through too, so a packaged builder
  over local files (``"path": "json"`` or ``"text"`` plus ``data_files``) takes the same code
  path as a hub dataset. In ``config``, ``split``, ``data_files`` and ``data_dir`` the
  placeholders ``{lang}`` (ISO 639-1), ``{flores}`` (FLORES-200 code) and ``{flores_plus}``
  (FLORES+ code: the FLORES-200 one except ``cmn_Hans`` for zh) are replaced by the language
  being loaded, e.g. ``"config": "xquad.{lang}"``, ``"config": "{flores}"`` (Belebele) or
  ``"config": "{flores_plus}"`` (``openlanguagedata/flores_plus``).
* ``{"kind": "local", "path": ...}``: files laid out as the real datasets' test
  splits (one file per language).
* ``{"kind": "builtin"}``: the project's own small sets, same layout as ``local``, in
  ``langarith/experiments/tasks/builtin/<task>`` (shipped inside the package) unless an
  explicit ``"path"`` is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from langarith.core.languages import LANGUAGES

KINDS = ("hub", "local", "builtin")
HUB_KEYS = frozenset(
    {"config", "split", "revision", "data_files", "data_dir", "field", "cache_dir"}
)
# the built-in sets are package data: found the same way by an editable and a regular install
BUILTIN_ROOT = Path(str(resources.files("langarith.experiments.tasks") / "builtin"))


def check_source(source: object, task: str, extra_keys: Iterable[str] = ()) -> str:
    """The ``kind`` of a valid ``source``; ``ValueError`` naming the bad field otherwise."""
    if not isinstance(source, Mapping):
        raise ValueError(f"{task} source: expected a dict, got {type(source).__name__}")
    kind = source.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{task} source: field 'kind' is {kind!r}, expected one of {KINDS}")
    allowed = {"kind", "path", *extra_keys} | (HUB_KEYS if kind == "hub" else set())
    unknown = sorted(set(source) - allowed)
    if unknown:
        raise ValueError(f"{task} source: unknown field(s) {unknown} for kind {kind!r}")
    if kind in ("hub", "local") and not source.get("path"):
        raise ValueError(f"{task} source: field 'path' is required for kind {kind!r}")
    return kind


def fill(template: str, lang: str) -> str:
    """``template`` with ``{lang}``, ``{flores}`` and ``{flores_plus}`` replaced for ``lang``."""
    text = template.replace("{lang}", lang)
    if "{flores" in text:
        if lang not in LANGUAGES:
            raise ValueError(f"placeholder in {template!r}: no FLORES code for {lang!r}")
        entry = LANGUAGES[lang]
        text = text.replace("{flores_plus}", entry.flores_plus).replace("{flores}", entry.flores)
    return text


def _fill_any(value: Any, lang: str) -> Any:
    if isinstance(value, str):
        return fill(value, lang)
    if isinstance(value, list | tuple):
        return [_fill_any(v, lang) for v in value]
    if isinstance(value, Mapping):
        return {k: _fill_any(v, lang) for k, v in value.items()}
    return value


def local_dir(source: Mapping[str, Any], task: str) -> Path:
    """The directory (or file) a ``local`` or ``builtin`` source points to; must exist."""
    if source["kind"] == "builtin":
        path = Path(source["path"]) if source.get("path") else BUILTIN_ROOT / task
        if not path.exists():
            raise ValueError(f"{path}: builtin {task} set not found (pass an explicit 'path')")
        return path
    path = Path(source["path"])
    if not path.exists():
        raise ValueError(f"{path}: {task} source path not found")
    return path


def describe_hub(source: Mapping[str, Any], lang: str) -> str:
    """A short name of a hub source for error messages (path, config, split, data files)."""
    parts = [str(source["path"])]
    for key in ("config", "split", "data_files"):
        if source.get(key):
            parts.append(f"{key}={_fill_any(source[key], lang)}")
    return " ".join(parts)


def load_hub_rows(source: Mapping[str, Any], lang: str, default_split: str) -> list[dict]:
    """All rows of the hub (or packaged-builder) dataset of ``source`` for ``lang``."""
    import datasets  # heavy import, only when a hub source is used

    kwargs: dict[str, Any] = {"split": fill(source.get("split") or default_split, lang)}
    for key in ("data_files", "data_dir", "field", "cache_dir", "revision"):
        if source.get(key) is not None:
            kwargs[key] = _fill_any(source[key], lang)
    config = fill(source["config"], lang) if source.get("config") else None
    where = describe_hub(source, lang)
    try:
        dataset = datasets.load_dataset(source["path"], config, **kwargs)
    except Exception as err:  # network, missing file, unknown config: one clear line
        from langarith.io.hub_errors import hub_error_line

        line = hub_error_line(err, "dataset", source["path"], kwargs.get("revision"))
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"hub dataset {where} (language {lang!r}): {line or first}") from err
    return dataset.to_list()
