"""Typed ``--config`` overrides: numbers, booleans and nulls inside a nested ``--config`` value.

Snakemake parses ``--config key=value`` with ``int``, ``float``, a boolean parser, then YAML's
``BaseLoader``, which reads every scalar as a string: ``--config recording='{max_tokens: 512}'``
reaches the workflow as ``{'max_tokens': '512'}``, and ``languages='[en, "no"]'`` as
``['en', 'no']`` (BaseLoader keeps no quotes either). Only top-level scalars are typed.

:func:`retype_overrides` gives such a string its YAML type where, and only where, the schema
refuses the string: ``max_tokens: '512'`` becomes 512 (the schema wants an integer), while the
language ``'no'`` stays a string (the schema wants one). A string the schema refuses whose YAML
type the schema refuses too becomes that typed value, so the error names what was meant
(``top_rate: 1.5 is outside (0, 1)``, not ``'1.5' is not of type 'number'``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

KeyPath = tuple[Any, ...]


def nested_strings(overrides: Mapping) -> set[KeyPath]:
    """Paths of the strings inside the values of ``overrides`` (not its top-level scalars, which
    Snakemake types itself)."""

    def walk(value: Any, path: KeyPath) -> Iterator[KeyPath]:
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from walk(item, (*path, key))
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                yield from walk(item, (*path, i))
        elif isinstance(value, str) and len(path) > 1:
            yield path

    return set(walk(dict(overrides), ()))


def _get(config: Any, path: KeyPath) -> Any:
    for part in path:
        config = config[part]
    return config


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def retype_overrides(
    config: dict,
    overrides: Mapping | None,
    schema: str | Path,
    sections: Mapping[str, str | Path] | None = None,
) -> list[str]:
    """Give the strings of nested ``--config`` ``overrides`` that the JSON ``schema`` (and the
    ``{section: schema}`` of the optional sections) refuses their YAML type, in ``config`` (the
    merged config, changed in place). Returns the dotted keys changed."""
    from langarith.workflow.settings.checks import _dotted, schema_errors

    candidates = nested_strings(overrides or {})
    if not candidates:
        return []
    schemas: list[tuple[KeyPath, str | Path]] = [((), schema)]
    schemas += [((name,), path) for name, path in (sections or {}).items() if name in config]
    changed: list[str] = []
    for _ in range(len(candidates) + 1):  # a fix can reveal an error deeper in a oneOf
        fixed = False
        for prefix, schema_path in schemas:
            try:
                instance = _get(config, prefix)
            except (KeyError, IndexError, TypeError):
                continue
            for error in schema_errors(instance, schema_path):
                path = (*prefix, *error.absolute_path)
                if path not in candidates:
                    continue
                try:
                    parent, leaf = _get(config, path[:-1]), path[-1]
                    value = parent[leaf]
                except (KeyError, IndexError, TypeError):
                    continue
                if not isinstance(value, str):
                    continue
                typed = _yaml_value(value)
                if isinstance(typed, str):
                    continue
                parent[leaf] = typed
                changed.append(_dotted(list(path)))
                fixed = True
        if not fixed:
            break
    return changed


def overrides_of(workflow: Any) -> Mapping:
    """The ``--config`` overrides of a Snakemake ``workflow`` as its parser read them (not the
    config files, whose values YAML typed already); empty when there are none."""
    settings = getattr(workflow, "config_settings", None)
    overrides = getattr(settings, "config", None)
    return dict(overrides) if isinstance(overrides, Mapping) else {}
