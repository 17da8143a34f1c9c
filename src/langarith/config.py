"""Checks of the workflow configuration that a JSON schema cannot express.

Each failure is a ``ConfigError`` whose one-line message starts with the offending key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from langarith.conditions import parse_condition
from langarith.languages import LANGUAGES


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


def _known(code: str, key: str) -> None:
    if code not in LANGUAGES:
        raise ConfigError(f"{key}: unknown language code {code!r} (known: {' '.join(LANGUAGES)})")


def forcing_targets(config: Mapping) -> list[str]:
    targets = config["forcing"]["targets"]
    return list(config["languages"]) if targets == "all" else list(targets)


def check_config(config: Mapping) -> None:
    """Raise ``ConfigError`` for the first semantic problem found in a schema-valid config."""
    languages = list(config["languages"])
    for code in languages:
        _known(code, "languages")
    corpus = config["corpus"]
    if corpus["kind"] == "local":
        path = corpus.get("path")
        if not path or not Path(path).is_dir():
            raise ConfigError(f"corpus.path: {path!r} is not a directory")
    if corpus["kind"] == "hub":
        for key in ("dataset", "text_field"):
            if not corpus.get(key):
                raise ConfigError(f"corpus.{key}: required for a hub corpus")
    for name, model in config["models"].items():
        source = model["source"]
        required = {"gguf_package": "package", "gguf_file": "path", "hub": "id", "local": "path"}
        key = required[source["kind"]]
        if not source.get(key):
            raise ConfigError(f"models.{name}.source.{key}: required for kind {source['kind']!r}")
        if source["kind"] in ("local", "gguf_file") and not Path(source[key]).exists():
            raise ConfigError(f"models.{name}.source.path: {source[key]!r} does not exist")
    for name, steps in config["conditions"].items():
        try:
            parsed = parse_condition(name, steps)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        for i, step in enumerate(parsed):
            if step.lang not in ("source", "target") and step.lang not in languages:
                raise ConfigError(
                    f"conditions.{name}[{i}].lang: {step.lang!r} is not 'source', 'target' "
                    "or one of the configured languages"
                )
    forcing = config["forcing"]
    for sel in forcing["selections"]:
        if sel not in config["selections"]:
            raise ConfigError(f"forcing.selections: {sel!r} is not a key of selections")
    for cond in forcing["conditions"]:
        if cond not in config["conditions"]:
            raise ConfigError(f"forcing.conditions: {cond!r} is not a key of conditions")
    for code in forcing["sources"]:
        if code not in languages:
            raise ConfigError(f"forcing.sources: {code!r} is not one of the configured languages")
    for code in forcing_targets(config):
        if code not in languages:
            raise ConfigError(f"forcing.targets: {code!r} is not one of the configured languages")
