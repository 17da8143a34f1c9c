"""The workflow's settings: every config check and default, one entry point, one error type.

:func:`load_settings` is what ``workflow/rules/common.smk`` calls, once, before any rule is
defined (and what the tests call): the config files, names, JSON schemas (whose defaults it
fills in, as Snakemake's ``validate`` does), the semantics of every section, then the resolved
optional sections. Any problem is one :class:`ConfigError` naming the config key or the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from langarith.workflow.settings.checks import (
    ConfigError,
    check_config,
    check_config_files,
    check_names,
    check_schema,
)

SECTIONS = ("tasks", "fallback", "analysis", "quality")


@dataclass(frozen=True)
class Settings:
    """The optional sections, resolved to plain builtins (what the rules' ``params:`` take)."""

    tasks: dict
    fallback: dict | None
    analysis: dict
    logit_lens: dict | None
    quality: dict | None
    calibration: dict | None


def section_schemas(schema_dir: str | Path) -> dict[str, Path]:
    return {name: Path(schema_dir) / f"{name}.schema.yaml" for name in SECTIONS}


def fill_defaults(config: MutableMapping, schema_dir: str | Path) -> None:
    """Fill in the schemas' defaults (the config is already valid)."""
    from snakemake.utils import validate

    validate(config, str(Path(schema_dir) / "config.schema.yaml"))
    for name, path in section_schemas(schema_dir).items():
        if name in config:
            validate(config[name], str(path))


def resolve_sections(config: Mapping) -> Settings:
    """The optional sections with their defaults; ``ConfigError`` naming the key."""
    from langarith.workflow.settings.analysis import (
        check_analysis,
        resolve_analysis,
        resolve_logit_lens,
    )
    from langarith.workflow.settings.fallback import resolve_fallback
    from langarith.workflow.settings.quality import (
        check_calibrated_uses,
        resolve_calibration,
        resolve_quality,
    )
    from langarith.workflow.settings.tasks import resolve_task

    try:
        tasks = {
            name: resolve_task(name, raw, config)
            for name, raw in (config.get("tasks") or {}).items()
        }
        fallback = resolve_fallback(config["fallback"], config) if "fallback" in config else None
        check_analysis(config)
        calibration = resolve_calibration(config)
        logit_lens = resolve_logit_lens(config)
        check_calibrated_uses(config, calibration, logit_lens)
        return Settings(
            tasks=tasks,
            fallback=fallback,
            analysis=resolve_analysis(config),
            logit_lens=logit_lens,
            quality=resolve_quality(config),
            calibration=calibration,
        )
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(str(err)) from None


def load_settings(
    config: MutableMapping, schema_dir: str | Path, configfiles: Iterable[str | Path] = ()
) -> Settings:
    """Check everything, fill in the defaults, resolve the optional sections (``config`` gets
    the schemas' defaults, as Snakemake's ``validate`` gives them)."""
    # duplicate keys in the config files (YAML silently keeps the last one)
    check_config_files(configfiles)
    # names become path parts: no `../x`, no `a/b`; `none` is a reserved selection name
    check_names(config)
    check_schema(config, Path(schema_dir) / "config.schema.yaml")
    for name, path in section_schemas(schema_dir).items():
        if name in config:
            check_schema(config[name], path, where=name)
    fill_defaults(config, schema_dir)
    check_config(config)
    return resolve_sections(config)


__all__ = ["ConfigError", "Settings", "load_settings"]
