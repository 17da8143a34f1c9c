"""Checks of the workflow configuration: ``check_everything``, the one entry point, called once
by ``workflow/rules/common.smk`` before any job (and by the tests).

Every failure is a ``ConfigError`` whose message is one line that starts with the offending key
(or file), so a bad configuration stops Snakemake with e.g.
``langarith: config error: selections.lape-1.top_rate: 1.5 is outside (0, 1)``.

In the order ``check_everything`` runs them:

* ``check_config_files``: the config files Snakemake read hold no duplicate key (YAML and JSON
  silently keep the last of two equal keys: two conditions called ``activate`` would run one);
* ``check_names``: names of models, selections, conditions and the corpus are safe path parts
  (they become wildcards in output paths: ``../x`` or ``a/b`` must never reach one), and the
  selection name ``none`` is reserved for unsteered conditions;
* ``check_schema``: the JSON schemas (the main one and one per optional section), reported as
  one line naming the key; then the schemas' defaults are filled in (Snakemake's ``validate``);
* ``check_config``: what a schema cannot express (known languages, every language's corpus file
  present and, until its job has read it, read whole as UTF-8 text; model directories whose
  architecture has a registered neuron site, a model's placement options, no more recording
  shards than a token budget has batches, conditions, cross-references). Fast: no model is
  loaded, only a model's ``config.json`` is read (and a local corpus once, before its first
  fetch);
* ``resolve_sections``: the optional sections (tasks, fallback, analysis and its logit lens,
  quality and its calibration) resolved against the rest, and every use of a calibrated
  condition covered by the calibration;
* ``check_gpus`` (in Snakemake only): ``--resources gpu=N`` against ``models.<name>.gpus``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langarith.core.languages import LANGUAGES

# Names that become path components (wildcards): the schema's ``$defs/name`` pattern, matched
# whole (``fullmatch``: a ``$`` would also match before a trailing newline), at most
# ``MAX_NAME`` characters (a file name holds 255 bytes, and a name is one part of several).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
MAX_NAME = 100
RESERVED_SELECTIONS = ("none",)
# Lists of strings that may hold control characters (a newline ends a generation).
FREE_TEXT_KEYS = ("stop_strings",)
_MAX_MESSAGE = 400


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """``text`` with all whitespace runs (newlines included) collapsed, cut to ``limit``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ConfigError(ValueError):
    """A configuration value is wrong; the message is one line and starts with the key."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def _known(code: str, key: str) -> None:
    if code not in LANGUAGES:
        raise ConfigError(f"{key}: unknown language code {code!r} (known: {' '.join(LANGUAGES)})")


def forcing_targets(config: Mapping) -> list[str]:
    targets = config["forcing"]["targets"]
    return list(config["languages"]) if targets == "all" else list(targets)


# --- config files -------------------------------------------------------------------------


def check_config_files(paths: Iterable[str | Path]) -> None:
    """``ConfigError`` naming the file (and line) of the first config file in ``paths`` that is
    not a mapping of keys in JSON or YAML (``strict_yaml.config_file_problem``) or holds a
    duplicate key. Files that are not there are skipped (Snakemake found them where it looks)."""
    from langarith.workflow.settings.strict_yaml import config_file_problem, find_duplicate_key

    for path in paths:
        if Path(path).is_file():
            problem = config_file_problem(path) or find_duplicate_key(path)
            if problem:
                raise ConfigError(problem)


# --- names ---------------------------------------------------------------------------------


def check_name(name: object, key: str) -> None:
    """``ConfigError`` unless ``name`` is a safe path component (see ``NAME_PATTERN``)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{key}: name {name!r} is not allowed: names become parts of output paths, so they "
            "start with a letter or digit and hold only letters, digits and _ . + -"
        )
    if len(name) > MAX_NAME:
        raise ConfigError(
            f"{key}: name {name[:20]!r}... is {len(name)} characters long; names become parts "
            f"of output paths and hold at most {MAX_NAME}"
        )


def check_names(config: Mapping) -> None:
    """Names of models, selections, conditions and the corpus; ``none`` is reserved."""
    for section in ("models", "selections", "conditions"):
        entries = config.get(section)
        if isinstance(entries, Mapping):
            for name in entries:
                check_name(name, f"{section}.{name}")
    corpus = config.get("corpus")
    if isinstance(corpus, Mapping) and "name" in corpus:
        check_name(corpus["name"], "corpus.name")
    selections = config.get("selections")
    if isinstance(selections, Mapping):
        for name in RESERVED_SELECTIONS:
            if name in selections:
                raise ConfigError(
                    f"selections.{name}: the name {name!r} is reserved (it stands for 'no "
                    "selection' in the paths of unsteered conditions); rename the selection"
                )


# --- values --------------------------------------------------------------------------------


def _control_character(text: str) -> str | None:
    return next((ch for ch in text if unicodedata.category(ch) == "Cc"), None)


def _key_part(key: object) -> str:
    return key if isinstance(key, str) and NAME_PATTERN.fullmatch(key) else repr(key)


def check_values(config: Any) -> None:
    """What no schema keyword can say, for every value of the config at once:

    * every number is finite: NaN passes every bound of a schema (each comparison is false)
      and infinity passes every lower bound, so ``.nan``/``.inf`` are refused wherever they are;
    * no key and no string holds a control character (a newline, a tab, NUL...), except the
      ``stop_strings`` lists: names become file names, and a pattern ending in ``$`` also
      matches before a trailing newline;
    * no key is a boolean: YAML reads an unquoted ``no``, ``yes``, ``on`` or ``off`` as one.
    """

    def walk(value: Any, path: tuple, free: bool) -> None:
        where = _dotted(path)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(
                f"{where}: {value!r} is not a finite number (NaN and infinity are never settings)"
            )
        if isinstance(value, str) and not free:
            bad = _control_character(value)
            if bad is not None:
                raise ConfigError(
                    f"{where}: {value!r} holds the control character U+{ord(bad):04X} (a newline, "
                    "tab or other control character is never part of a setting)"
                )
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, bool):
                    raise ConfigError(
                        f"{where}: the key {key!r} is a boolean: YAML reads an unquoted no, yes, "
                        f"on or off as one; quote it (e.g. 'no')"
                    )
                if isinstance(key, str) and _control_character(key) is not None:
                    bad = _control_character(key)
                    raise ConfigError(
                        f"{where}: the key {key!r} holds the control character U+{ord(bad):04X}"
                    )
                if isinstance(key, float) and not math.isfinite(key):
                    raise ConfigError(f"{where}: the key {key!r} is not a finite number")
                walk(item, (*path, _key_part(key)), free or key in FREE_TEXT_KEYS)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(item, (*path, i), free)

    walk(config, (), False)


# --- JSON schema ---------------------------------------------------------------------------


def _dotted(path: Sequence[Any], prefix: str = "") -> str:
    out = prefix
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "config"


def _load_schema(path: str | Path) -> dict:
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _describe(schema: Any, root: Mapping) -> str:
    """A few words for what ``schema`` accepts (for the alternatives of ``oneOf``/``anyOf``)."""
    if not isinstance(schema, Mapping):
        return "anything"
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return _describe(target, root)
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    words = {
        "array": "a list",
        "object": "a mapping",
        "string": "a string",
        "number": "a number",
        "integer": "a whole number",
        "boolean": "true or false",
        "null": "null",
    }
    if kinds == ["array"] and isinstance(schema.get("items"), Mapping):
        item = _describe(schema["items"], root)
        return "a list of " + (item[2:] + "s" if item.startswith("a ") else item)
    return " or ".join(words.get(k, k) for k in kinds) or "a value"


def _duplicate(items: Sequence[Any]) -> Any:
    seen: list[Any] = []
    for item in items:
        if item in seen:
            return item
        seen.append(item)
    return None


_YAML_BOOLEAN_HINT = (
    " (YAML reads an unquoted no, yes, on, off, true or false as a boolean: quote it, e.g. 'no')"
)


def _schema_message(error, root: Mapping | None = None) -> str:
    """One line for a ``jsonschema`` error: bounds as intervals, the alternatives of
    ``oneOf``/``anyOf`` spelled out, the duplicate of a list, a hint for YAML booleans, the
    closest known key for an unknown one."""
    root = root or {}
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    instance = error.instance
    bounds = ("exclusiveMinimum", "exclusiveMaximum", "minimum", "maximum")
    if error.validator in bounds and isinstance(instance, int | float):
        low = schema.get("exclusiveMinimum", schema.get("minimum"))
        high = schema.get("exclusiveMaximum", schema.get("maximum"))
        if low is not None and high is not None:
            left = "(" if "exclusiveMinimum" in schema else "["
            right = ")" if "exclusiveMaximum" in schema else "]"
            return f"{instance!r} is outside {left}{low}, {high}{right}"
    if error.validator in ("oneOf", "anyOf"):
        allowed = " or ".join(_describe(sub, root) for sub in error.validator_value)
        hint = _YAML_BOOLEAN_HINT if isinstance(instance, bool) else ""
        return f"{instance!r} is not allowed: expected {allowed}{hint}"
    if error.validator == "uniqueItems" and isinstance(instance, list):
        return f"{_duplicate(instance)!r} is listed twice (each entry once)"
    if error.validator == "type":
        expected = error.validator_value
        expected = [expected] if isinstance(expected, str) else list(expected)
        if isinstance(instance, bool) and "string" in expected:
            return error.message + _YAML_BOOLEAN_HINT
        if isinstance(instance, float) and instance.is_integer() and "integer" in expected:
            return (
                f"{instance!r} is not an integer: write {int(instance)} (a float where a count "
                "is meant is refused, not rounded)"
            )
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = list(schema.get("properties") or {})
        unknown = [k for k in instance if k not in known]
        close = difflib.get_close_matches(str(unknown[0]), known, n=1) if unknown else []
        if close:
            return f"{error.message}; did you mean {close[0]!r}?"
    return error.message


def _strict_validator():
    """Draft 2020-12 with ``integer`` meaning an int: ``4.0`` is not one (jsonschema accepts any
    integral float as an integer; a job would then get a float where it counts)."""
    from jsonschema import Draft202012Validator, validators

    def is_integer(_checker, instance) -> bool:
        return isinstance(instance, int) and not isinstance(instance, bool)

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", is_integer)
    return validators.extend(Draft202012Validator, type_checker=checker)


def _schema_validator(schema_path: str | Path):
    """The validator of the schema file (YAML or JSON) at ``schema_path`` (references to other
    schema files resolve relative to it) and the schema; ``None`` if it is not a local file."""
    from referencing import Registry, Resource

    if not Path(schema_path).is_file():
        return None
    schema_path = Path(schema_path).resolve()
    schema = dict(_load_schema(schema_path))
    schema["$id"] = schema_path.as_uri()

    def retrieve(uri: str) -> Resource:
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        return Resource.from_contents(_load_schema(url2pathname(urlparse(uri).path)))

    registry = Registry(retrieve=retrieve).with_resource(
        schema["$id"], Resource.from_contents(schema)
    )
    return _strict_validator()(schema, registry=registry), schema


def schema_errors(instance: Any, schema_path: str | Path) -> list:
    """Every ``jsonschema`` error of ``instance`` against the schema file at ``schema_path``
    (none if it is not a local file)."""
    found = _schema_validator(schema_path)
    return [] if found is None else list(found[0].iter_errors(instance))


def check_schema(instance: Any, schema_path: str | Path, where: str = "") -> None:
    """Validate ``instance`` against the JSON schema file (YAML or JSON) at ``schema_path``.

    ``ConfigError``: one line naming the key (dotted, ``where`` as prefix) and the problem. Nothing
    is changed (Snakemake's ``validate`` fills in defaults afterwards). References to other
    schema files resolve relative to ``schema_path``. ``integer`` means an int: an integral
    float such as ``4.0`` is refused (see :func:`_strict_validator`).
    """
    from jsonschema.exceptions import best_match

    found = _schema_validator(schema_path)
    if found is None:
        return  # not a local file (a workflow used as a remote module): Snakemake validates it
    validator, schema = found
    error = best_match(validator.iter_errors(instance))
    if error is not None:
        # an alternative that failed inside oneOf/anyOf: name the alternatives instead
        parent = error.parent
        if parent is not None and parent.validator in ("oneOf", "anyOf"):
            if list(parent.absolute_path) == list(error.absolute_path):
                error = parent
        where = _dotted(list(error.absolute_path), where)
        raise ConfigError(f"{where}: {_schema_message(error, schema)}")


# --- models --------------------------------------------------------------------------------


def supported_model_types() -> set[str]:
    """Model types with a registered neuron site (``langarith.model.sites``)."""
    from langarith.model import sites

    registered = getattr(sites, "supported_model_types", None)
    return set(registered()) if callable(registered) else set(sites.SITES)


def _transformers_model_types() -> set[str]:
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    except Exception:  # pragma: no cover - only used to word the message
        return set()
    return set(CONFIG_MAPPING_NAMES)


def model_type_of(config_json: Mapping) -> str | None:
    """The model type whose MLP is hooked: the text config's, for multimodal wrappers."""
    text = config_json.get("text_config")
    if isinstance(text, Mapping) and text.get("model_type"):
        return str(text["model_type"])
    value = config_json.get("model_type")
    return str(value) if value else None


def check_model_type(model_type: str | None, key: str, where: str) -> None:
    """``ConfigError`` unless ``model_type`` has a registered neuron site."""
    supported = supported_model_types()
    if not model_type:
        raise ConfigError(f"{key}: {where} names no model_type")
    if model_type in supported:
        return
    listed = ", ".join(sorted(supported))
    if model_type in _transformers_model_types():
        raise ConfigError(
            f"{key}: model type {model_type!r} ({where}) has an MLP with no supported neuron "
            f"site (supported: {listed}); register a SiteSpec in langarith.model.sites.SITES"
        )
    raise ConfigError(
        f"{key}: model type {model_type!r} ({where}) is not a supported architecture "
        f"(supported: {listed})"
    )


def check_local_model(name: str, path: str) -> None:
    """A local Hugging Face model directory: config.json with a supported model type and
    safetensors weights (pickled ``.bin`` / ``.pt`` checkpoints are never loaded)."""
    key = f"models.{name}.source.path"
    directory = Path(path)
    if not directory.exists():
        raise ConfigError(f"{key}: {path!r} does not exist")
    if not directory.is_dir():
        raise ConfigError(f"{key}: {path!r} is not a directory (a Hugging Face model directory)")
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{key}: {path!r} has no config.json")
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{key}: {str(config_file)!r} is not valid JSON ({err})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{key}: {str(config_file)!r} is not a JSON object")
    check_model_type(model_type_of(data), f"models.{name}", str(config_file))
    if not any(directory.glob("*.safetensors")):
        raise ConfigError(
            f"{key}: {path!r} has no *.safetensors weights (langarith never loads pickled "
            ".bin/.pt checkpoints; convert them with save_pretrained(safe_serialization=True))"
        )
    from langarith.io.readers import safetensors_problem

    for weights in sorted(directory.glob("*.safetensors")):
        problem = safetensors_problem(weights)
        if problem is not None:
            raise ConfigError(f"{key}: {problem}")


def check_gguf_file(name: str, path: str) -> None:
    key = f"models.{name}.source.path"
    gguf = Path(path)
    if not gguf.exists():
        raise ConfigError(f"{key}: {path!r} does not exist")
    if not gguf.is_file():
        raise ConfigError(f"{key}: {path!r} is not a file")
    with open(gguf, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ConfigError(f"{key}: {path!r} is not a GGUF file (no GGUF magic)")


def check_placement(name: str, model: Mapping) -> None:
    """``device_map``, ``max_memory`` and ``offload_folder`` of a model, as ``load_model`` checks
    them (whether an explicit map's module names exist is only known when it loads)."""
    from langarith.model.placement import check_options

    try:
        check_options(model.get("device_map"), model.get("max_memory"), model.get("offload_folder"))
    except ValueError as err:
        raise ConfigError(f"models.{name}.{err}") from None


def check_models(models: Mapping) -> None:
    required = {"gguf_package": "package", "gguf_file": "path", "hub": "id", "local": "path"}
    for name, model in models.items():
        check_placement(name, model)
        source = model["source"]
        kind = source["kind"]
        key = required[kind]
        if not source.get(key):
            raise ConfigError(f"models.{name}.source.{key}: required for kind {kind!r}")
        if kind == "local":
            check_local_model(name, source["path"])
        elif kind == "gguf_file":
            check_gguf_file(name, source["path"])


# --- corpus --------------------------------------------------------------------------------

# The start of a corpus file looked at for binary content once its job has read it whole.
_SNIFF_BYTES = 1 << 16


def check_corpus(
    corpus: Mapping, languages: Sequence[str], fetched_corpus: Path = Path("resources/corpus")
) -> None:
    """A hub corpus names its dataset, field and budget. A local one has a non-empty file per
    language, read whole (UTF-8, no NUL byte, some text: ``text_problem``) unless its fetched
    Parquet under ``fetched_corpus`` (relative to Snakemake's working directory) is newer than
    it: then its ``fetch_corpus`` job has read it already, and only its start is looked at,
    so a large corpus is read once, not on every invocation."""
    kind = corpus["kind"]
    if kind == "hub":
        for key in ("dataset", "text_field"):
            if not corpus.get(key):
                raise ConfigError(f"corpus.{key}: required for a hub corpus")
        if not corpus.get("max_chars") and not corpus.get("max_documents"):
            raise ConfigError(
                "corpus.max_chars: required for a hub corpus (or corpus.max_documents): the "
                "characters fetched per language, enough for recording.max_tokens under every "
                "model's tokenizer; without it the whole dataset would be streamed"
            )
    if kind != "local":
        return
    from langarith.io.corpora.local import corpus_file, text_problem

    path = corpus.get("path")
    if not path or not Path(path).is_dir():
        raise ConfigError(f"corpus.path: {path!r} is not a directory")
    pattern = corpus.get("pattern", "{lang}.txt")
    for lang in languages:
        try:
            file = corpus_file(path, lang, pattern)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(
                f"corpus.pattern: {pattern!r} is not a file name pattern with {{lang}} or "
                f"{{flores}} ({type(err).__name__}: {err})"
            ) from None
        if not file.is_file():
            raise ConfigError(
                f"corpus.path: no corpus file for language {lang!r}: {str(file)!r} does not exist "
                f"(pattern {pattern!r})"
            )
        if file.stat().st_size == 0:
            raise ConfigError(f"corpus.path: the corpus file {str(file)!r} of {lang!r} is empty")
        fetched = fetched_corpus / corpus["name"] / f"{lang}.parquet"
        if fetched.is_file() and fetched.stat().st_mtime >= file.stat().st_mtime:
            problem = _sniffed_problem(file)  # its fetch_corpus job has read it whole already
        else:
            problem = text_problem(file)  # its fetch_corpus job will read it: check it whole
        if problem:
            raise ConfigError(
                f"corpus.path: {file}: {problem}; a local corpus is UTF-8 text, one document "
                "per line"
            )


def _sniffed_problem(file: Path) -> str | None:
    with open(file, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    nul = head.find(b"\x00")
    return f"a binary file, not text (a NUL byte at offset {nul})" if nul >= 0 else None


# --- conditions and cross-references -------------------------------------------------------


def check_conditions(conditions: Mapping, languages: Sequence[str]) -> None:
    from langarith.core.conditions import parse_condition

    for name, steps in conditions.items():
        try:
            parsed = parse_condition(name, steps)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        for i, step in enumerate(parsed):
            where = f"conditions.{name}[{i}]"
            if step.lang not in ("source", "target") and step.lang not in languages:
                raise ConfigError(
                    f"{where}.lang: {step.lang!r} is not 'source', 'target' "
                    "or one of the configured languages"
                )
            if step.layers is not None and step.layers[0] > step.layers[1]:
                raise ConfigError(
                    f"{where}.layers: [first, last] must not be decreasing, got {list(step.layers)}"
                )


def check_recording(recording: Mapping) -> None:
    """No shard of a full token budget is empty (each needs ``batch_size`` chunks of its own)."""
    from langarith.io.shards import max_shards

    shards, budget = recording.get("shards", 1), recording.get("max_tokens")
    if budget is None or shards == 1:
        return
    most = max_shards(budget, recording["chunk_tokens"], recording["batch_size"])
    if shards > most:
        raise ConfigError(
            f"recording.shards: {shards} shards would leave some empty: a budget of {budget} "
            f"tokens in batches of {recording['batch_size']} chunks of "
            f"{recording['chunk_tokens']} tokens makes at most {most} shards"
        )


def check_config(config: Mapping) -> None:
    """Raise ``ConfigError`` for the first semantic problem found in a schema-valid config."""
    languages = list(config["languages"])
    for code in languages:
        _known(code, "languages")
    check_names(config)
    check_corpus(config["corpus"], languages)
    check_models(config["models"])
    check_recording(config["recording"])
    check_conditions(config["conditions"], languages)
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


# --- references to files and models -------------------------------------------------------

# Layer-count keys of a Hugging Face config.json, in the order they are looked for.
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")


def _layers_in(config_json: Mapping) -> int | None:
    for part in (config_json.get("text_config"), config_json):
        if isinstance(part, Mapping):
            for key in _LAYER_KEYS:
                value = part.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                    return value
    return None


def _read_config_json(path: Path) -> Mapping | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, Mapping) else None


def model_layer_count(name: str, model: Mapping, prepared: Path) -> tuple[int, str] | None:
    """``(layers, where it was read)`` of a model, from what is on disk without loading it: a
    local model's ``config.json``, the prepared directory ``prepared/<name>`` when its manifest
    records the same source, or the Hugging Face cache for a hub model. ``None`` when none of
    them is there yet (a model not downloaded or converted): the check is then left to the job.
    """
    source = model["source"]
    candidates: list[Path] = []
    if source.get("kind") == "local" and source.get("path"):
        candidates.append(Path(source["path"]) / "config.json")
    manifest = _read_config_json(prepared / name / "langarith_model.json")
    if manifest is not None and manifest.get("source") == dict(source):
        candidates.append(prepared / name / str(manifest.get("path", ".")) / "config.json")
    if source.get("kind") == "hub" and source.get("id"):
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(
                source["id"], "config.json", revision=source.get("revision")
            )
        except Exception:  # noqa: BLE001 - only a shortcut: the job checks again
            cached = None
        if isinstance(cached, str):
            candidates.append(Path(cached))
    for path in candidates:
        data = _read_config_json(path) if path.is_file() else None
        layers = _layers_in(data) if data is not None else None
        if layers is not None:
            return layers, str(path)
    return _gguf_layer_count(source)


def _gguf_layer_count(source: Mapping) -> tuple[int, str] | None:
    """A GGUF source's layer count from its file's header (a package's chunks, in order)."""
    from langarith.io.gguf_metadata import gguf_block_count

    parts: list[Path] = []
    if source.get("kind") == "gguf_file" and source.get("path"):
        parts = [Path(source["path"])]
    elif source.get("kind") == "gguf_package" and source.get("package"):
        try:
            import importlib

            chunk_paths = getattr(importlib.import_module(source["package"]), "chunk_paths", None)
            parts = [Path(p) for p in chunk_paths()] if chunk_paths else []
        except Exception:  # noqa: BLE001 - only a shortcut: the model check names the package
            parts = []
    if not parts or not all(p.is_file() for p in parts):
        return None
    try:
        layers = gguf_block_count(parts)
    except (OSError, ValueError):
        return None  # the weights check names a file that is not GGUF
    return (layers, f"the GGUF header of {parts[0]}") if layers is not None else None


def check_layers(config: Mapping, prepared: Path) -> None:
    """Every condition's ``layers: [first, last]`` within every model's layers (a condition runs
    on every model), where the layer count can be read before any job."""
    counts = {}
    for name, model in config["models"].items():
        found = model_layer_count(name, model, prepared)
        if found is not None:
            counts[name] = found
    from langarith.core.conditions import parse_condition

    sweep = (config.get("quality") or {}).get("layer_sweep") or {}
    for layer in sweep.get("layers") or []:
        for name, (n, where) in counts.items():
            if layer >= n:
                raise ConfigError(
                    f"quality.layer_sweep.layers: layer {layer} is outside the {n} layers of "
                    f"model {name!r} (0-{n - 1}; {where})"
                )
    for cond, steps in config["conditions"].items():
        for i, step in enumerate(parse_condition(cond, steps)):
            layers = step.layers
            if layers is None:
                continue
            for name, (n, where) in counts.items():
                if layers[1] >= n:
                    raise ConfigError(
                        f"conditions.{cond}[{i}].layers: {list(layers)} reaches layer {layers[1]}, "
                        f"but model {name!r} has {n} layers (0-{n - 1}; {where})"
                    )
