"""The workflow's settings: every config check and default, one entry point, one error type.

:func:`check_everything` is what ``workflow/rules/common.smk`` calls, once, before any rule is
defined, and what the tests call: config files, values, names, JSON schemas (whose defaults it
fills in, as Snakemake's ``validate`` does), the semantics of every section, prompt files,
layer counts and GPU resources, then the resolved optional sections (:class:`Settings`). Any
problem is one :class:`ConfigError` naming the config key or the file. One module per section:
``checks`` (the core sections and the entry point), ``tasks``, ``fallback``, ``quality`` (with
the calibration), ``analysis`` (with the logit lens), ``strict_yaml`` (the config files).
``python -m langarith.workflow.settings CONFIGFILE...`` runs the same checks without Snakemake.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langarith.core.conditions import parse_condition
from langarith.workflow.settings.checks import (
    ConfigError,
    check_config,
    check_config_files,
    check_layers,
    check_names,
    check_schema,
    check_values,
    forcing_targets,
)

SECTIONS = ("tasks", "fallback", "analysis", "quality")


def _check_questions(path: Path, key: str, sources: Sequence[str], what: str) -> None:
    from langarith.io.prompts import read_questions

    if not path.is_file():
        raise ConfigError(f"{key}: {str(path)!r} does not exist")
    try:
        questions = read_questions(path)
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"{key}: {path}: {err}".replace(f"{path}: {path}:", f"{path}:")) from None
    missing = [code for code in sources if not questions.get(code)]
    if missing:
        raise ConfigError(f"{key}: {path} has no questions in {' '.join(missing)} ({what})")


def _check_instructions(path: Path, sources: Sequence[str], targets: Sequence[str]) -> None:
    from langarith.io.prompts import read_instructions

    key = "forcing.instructions"
    if not path.is_file():
        raise ConfigError(f"{key}: {str(path)!r} does not exist")
    try:
        read_instructions(path).require([(s, t) for s in sources for t in targets])
    except (OSError, ValueError) as err:
        raise ConfigError(f"{key}: {err}") from None


def _check_forcing_only_uses(config: Mapping, settings: Settings) -> None:
    """A condition with an ``instruct`` step or ``layers: best`` runs on the forcing prompts
    only: not in a task, the calibration or the logit lens."""
    uses = [
        (f"tasks.{name}.conditions", cond)
        for name, task in settings.tasks.items()
        for cond in task["conditions"]
    ]
    if settings.calibration:
        uses.append(("quality.calibration.condition", settings.calibration["condition"]))
    if settings.lens:
        uses.append(("analysis.logit_lens.condition", settings.lens["condition"]))
    for key, cond in uses:
        parsed = parse_condition(cond, config["conditions"][cond])
        what = "an instruct step" if parsed.instructed else "layers 'best'"
        if parsed.instructed or parsed.swept:
            raise ConfigError(
                f"{key}: condition {cond!r} has {what}, which applies to the forcing prompts "
                "only (forcing.conditions)"
            )


def check_files(config: Mapping, settings: Settings, root: Path) -> None:
    """The prompt files the rules read (relative to the workflow's directory ``root``) exist and
    hold prompts in every language asked of them; a local or built-in task source holds
    every language's items."""
    from langarith.experiments.fallback import PROMPT_TEMPLATE
    from langarith.io.prompts import read_prompts

    forcing = config["forcing"]
    questions = root / forcing.get("questions", "resources/prompts/forcing.tsv")
    _check_questions(questions, "forcing.questions", forcing["sources"], "forcing.sources")
    instructed = [
        name
        for name in forcing["conditions"]
        if parse_condition(name, config["conditions"][name]).instructed
    ]
    if instructed:
        _check_instructions(
            root / forcing.get("instructions", "resources/prompts/instructions.tsv"),
            forcing["sources"],
            forcing_targets(config),
        )
    _check_forcing_only_uses(config, settings)
    if settings.native:  # native prompting asks every target its own forcing questions
        targets = forcing_targets(config)
        _check_questions(
            questions, "forcing.questions", targets, "forcing.targets (quality.native)"
        )
    if settings.lens:
        key = "forcing.questions"  # the logit lens asks the forcing questions
        _check_questions(questions, key, settings.lens["sources"], "analysis.logit_lens.sources")
    if settings.calibration:
        path = root / settings.calibration["questions"]
        key = "quality.calibration.questions"
        _check_questions(path, key, settings.calibration["sources"], "quality.calibration.sources")
    if settings.layer_sweep:
        sweep = settings.layer_sweep
        path = root / sweep["questions"]
        key = "quality.layer_sweep.questions"
        _check_questions(path, key, sweep["sources"], "quality.layer_sweep.sources")
        parsed = [parse_condition(n, config["conditions"][n]) for n in forcing["conditions"]]
        swept_instructed = [c.name for c in parsed if c.swept and c.instructed]
        if swept_instructed:  # its sweep asks the calibration questions with the instructions
            _check_instructions(
                root / forcing.get("instructions", "resources/prompts/instructions.tsv"),
                sweep["sources"],
                sweep["targets"],
            )
    if settings.fallback:
        path = root / settings.fallback["prompts"]
        if not path.is_file():
            raise ConfigError(f"fallback.prompts: {str(path)!r} does not exist")
        try:
            read_prompts(path, PROMPT_TEMPLATE, settings.fallback["max_prompts"])
        except (OSError, ValueError) as err:
            raise ConfigError(f"fallback.prompts: {err}") from None
    for name, task in settings.tasks.items():
        _check_task_files(name, task)


def _check_task_files(name: str, task: Mapping) -> None:
    """A local or built-in task source holds every language's items, read as its jobs read
    them (so a missing language file, bad JSON or a row without a field stops the run here);
    hub datasets are asked about by the hub check."""
    from langarith.experiments.tasks.run import load_task_items

    source = task["source"]
    if source.get("kind") not in ("local", "builtin"):
        return
    if source.get("kind") == "local" and not Path(source["path"]).exists():
        raise ConfigError(f"tasks.{name}.source.path: {source['path']!r} does not exist")
    try:
        items = load_task_items(name, source, task["langs"], task["max_items"])
    except (OSError, ValueError) as err:
        raise ConfigError(f"tasks.{name}.source: {err}") from None
    for lang, lang_items in items.items():
        if not lang_items:
            raise ConfigError(f"tasks.{name}.source: no items for language {lang!r}")


@dataclass(frozen=True)
class Settings:
    """The resolved optional sections of a checked config (plain builtins, for ``params:``).

    ``tasks``: ``{name: settings}``; the others ``None`` when the section is not configured.
    """

    tasks: dict
    fallback: dict | None
    analysis: dict
    lens: dict | None
    quality: dict | None
    calibration: dict | None
    layer_sweep: dict | None
    native: dict | None


def resolve_sections(config: Mapping) -> Settings:
    """Check and resolve the optional sections (tasks, fallback, analysis, logit lens, quality,
    calibration) and every use of a calibrated condition; ``ConfigError`` naming the key."""
    from langarith.workflow.settings.analysis import (
        check_analysis,
        resolve_analysis,
        resolve_logit_lens,
    )
    from langarith.workflow.settings.fallback import resolve_fallback
    from langarith.workflow.settings.quality import (
        check_calibrated_uses,
        resolve_calibration,
        resolve_layer_sweep,
        resolve_native,
        resolve_quality,
    )
    from langarith.workflow.settings.tasks import resolve_task

    try:
        raw_tasks = config.get("tasks") or {}
        tasks = {name: resolve_task(name, raw, config) for name, raw in raw_tasks.items()}
        fallback = resolve_fallback(config["fallback"], config) if "fallback" in config else None
        check_analysis(config)
        analysis = resolve_analysis(config)
        lens = resolve_logit_lens(config)
        quality = resolve_quality(config)
        calibration = resolve_calibration(config)
        check_calibrated_uses(config, calibration, lens)
        layer_sweep = resolve_layer_sweep(config)
        native = resolve_native(config)
    except ConfigError:
        raise
    except ValueError as err:  # the section modules raise ValueError naming the key
        raise ConfigError(str(err)) from None
    return Settings(tasks, fallback, analysis, lens, quality, calibration, layer_sweep, native)


def check_gpus(workflow: Any, config: Mapping) -> None:
    """``--resources gpu=N`` against ``models.<name>.gpus`` (``langarith.gpu``): ``ConfigError``
    when no job could run, a warning on stderr when GPU jobs are not capped."""
    import sys

    from langarith.workflow.gpu import gpu_resource_problem

    gpus = {name: int(model.get("gpus", 1)) for name, model in config["models"].items()}
    problem = gpu_resource_problem(workflow, gpus)
    if problem is None:
        return
    level, message = problem
    message = message.removeprefix("langarith: ")
    if level == "error":
        raise ConfigError(message)
    print(f"langarith: {message}", file=sys.stderr)


def _fill_defaults(instance: Any, schema_path: str | Path) -> None:
    from snakemake.utils import validate

    validate(instance, str(schema_path))


def check_everything(
    config: dict,
    schema: str | Path,
    sections: Mapping[str, str | Path] | None = None,
    configfiles: Iterable[str | Path] = (),
    *,
    fill_defaults: Callable[[Any, str | Path], None] | None = _fill_defaults,
    root: str | Path | None = None,
    workflow: Any = None,
    overrides: Mapping | None = None,
) -> Settings:
    """Every check of the configuration, in order; the one entry point (``common.smk`` calls it
    once, the tests call it too). ``ConfigError``, one line naming the key or file, on the
    first problem:

    config files (duplicate keys), the strings of nested ``--config`` ``overrides`` (default:
    the Snakemake ``workflow``'s) typed where the schema refuses them (``overrides``), values
    (finite numbers, no control characters, no boolean keys), names, the JSON schema (plus
    ``{section: schema}`` for the optional sections), then the schema's defaults are filled in
    place (``fill_defaults``: Snakemake's ``validate``; ``None`` leaves ``config`` as it is),
    then ``check_config``, the optional sections (:func:`resolve_sections`), the prompt files
    (relative to ``root``, the workflow's directory; default: the current one), every
    condition's layers against the models' layer counts (a prepared model is looked for in
    ``resources/models`` of the current directory, Snakemake's working directory) and, given
    the Snakemake ``workflow``, the GPU resources of the command line and, in a run that
    executes jobs, the hub repositories it will read (``hub``: they exist, have the revision
    and the configs, and the token in use may read them).
    Returns the resolved optional sections.
    """
    from langarith.workflow.settings.overrides import overrides_of, retype_overrides

    present = {name: path for name, path in (sections or {}).items() if name in config}
    check_config_files(configfiles)
    if overrides is None and workflow is not None:
        overrides = overrides_of(workflow)
    retype_overrides(config, overrides, schema, present)
    check_values(config)
    check_names(config)
    check_schema(config, schema)
    for section, path in present.items():
        check_schema(config[section], path, where=section)
    if fill_defaults is not None:
        fill_defaults(config, schema)
        for section, path in present.items():
            fill_defaults(config[section], path)
    check_config(config)
    settings = resolve_sections(config)
    check_files(config, settings, Path(root) if root is not None else Path.cwd())
    check_layers(config, Path("resources/models"))
    if settings.quality:
        from langarith.workflow.settings.quality import check_relevance_layer

        try:
            relevance = settings.quality.get("relevance")
            check_relevance_layer(config, relevance, Path("resources/models"))
        except ValueError as err:
            raise ConfigError(str(err)) from None
    if workflow is not None:
        check_gpus(workflow, config)
    from langarith.workflow.settings.hub import check_hub_sources, hub_checks_apply

    if hub_checks_apply(workflow):
        check_hub_sources(config, settings.tasks, Path.cwd())
    return settings


# --- the same checks without Snakemake ------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m langarith.workflow.settings [--workflow DIR] CONFIGFILE...``: every check of a
    run on these config files (merged in order, as ``--configfile a b`` does), before Snakemake
    reads them; Snakemake itself reports a config file it cannot read with a traceback or a
    line without the file. Prints ``langarith: config error: ...`` and exits 1 on the first problem.
    """
    import argparse
    import sys

    import yaml

    parser = argparse.ArgumentParser(
        prog="python -m langarith.workflow.settings", description=main.__doc__
    )
    parser.add_argument("configfiles", nargs="+", type=Path)
    parser.add_argument(
        "--workflow", type=Path, default=Path.cwd(), help="the workflow's directory (default: .)"
    )
    args = parser.parse_args(argv)
    from langarith.workflow.settings.strict_yaml import config_file_problem

    try:
        config: dict = {}
        for path in args.configfiles:
            problem = config_file_problem(path)
            if problem:
                raise ConfigError(problem)
            _merge(config, yaml.safe_load(path.read_text(encoding="utf-8")))
        schemas = args.workflow / "workflow" / "schemas"
        sections = {
            name: schemas / f"{name}.schema.yaml"
            for name in ("tasks", "fallback", "analysis", "quality")
        }
        check_everything(
            config, schemas / "config.schema.yaml", sections, args.configfiles, root=args.workflow
        )
    except ConfigError as err:
        print(f"langarith: config error: {err}", file=sys.stderr)
        return 1
    print(f"langarith: {' '.join(map(str, args.configfiles))}: every check passed")
    return 0


def _merge(into: dict, update: Mapping) -> None:
    """Snakemake's merge of config files: mappings merged key by key, other values replaced."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
