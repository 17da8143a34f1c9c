"""The ``tasks`` section: every task's settings resolved to plain builtins and checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langarith.core.conditions import parse_condition
from langarith.experiments.tasks import TASKS, get_task
from langarith.experiments.tasks.run import MULTIPLE_CHOICE, TASK_METRICS
from langarith.experiments.tasks.sources import check_source

GENERATION_DEFAULTS = {"repetition_penalty": 1.1, "batch_size": 16, "positions": "all"}


class TaskConfigError(ValueError):
    """A ``tasks`` setting is wrong; the message names the key."""


def steer_languages(raw: Mapping, languages: Sequence[str]) -> list[str]:
    """A task's steered languages: ``steer_langs``, where ``all`` (the default) is every
    configured language."""
    steer = raw.get("steer_langs", "all")
    return list(languages) if steer == "all" else list(steer)


def resolve_task(name: str, raw: Mapping, config: Mapping) -> dict:
    """The complete settings of task ``name`` as plain builtins (what a job receives).

    Checks what the JSON schema cannot: known task, selections and conditions that exist,
    steered languages among the configured ones, a known heatmap metric.
    """
    where = f"tasks.{name}"
    if name not in TASKS:
        raise TaskConfigError(f"{where}: unknown task (known: {' '.join(TASKS)})")
    languages = list(config["languages"])
    for sel in raw["selections"]:
        if sel not in config["selections"]:
            raise TaskConfigError(f"{where}.selections: {sel!r} is not a key of selections")
    for cond in raw["conditions"]:
        if cond not in config["conditions"]:
            raise TaskConfigError(f"{where}.conditions: {cond!r} is not a key of conditions")
    steer_langs = steer_languages(raw, languages)
    for code in steer_langs:
        if code not in languages:
            raise TaskConfigError(
                f"{where}.steer_langs: {code!r} is not one of the configured languages"
            )
    uses_source = any(
        parse_condition(cond, config["conditions"][cond]).acts_on_source
        for cond in raw["conditions"]
    )
    if uses_source:
        for code in raw["langs"]:
            if code not in languages:
                raise TaskConfigError(
                    f"{where}.langs: {code!r} has no neurons (not a configured language) but a "
                    "condition acts on the source language"
                )
    module = get_task(name)
    try:
        check_source(raw["source"], name, getattr(module, "EXTRA_KEYS", ()))
    except ValueError as err:
        raise TaskConfigError(f"{where}.source: {err}") from None
    spec = module.SPEC
    generation = {
        "max_new_tokens": spec.max_new_tokens,
        "stop_strings": list(spec.stop_strings),
        **GENERATION_DEFAULTS,
        **dict(raw.get("generation") or {}),
    }
    metric = raw.get("plot_metric", TASK_METRICS[name][0])
    if metric not in TASK_METRICS[name]:
        raise TaskConfigError(
            f"{where}.plot_metric: {metric!r} is not one of {', '.join(TASK_METRICS[name])}"
        )
    return {
        "task": name,
        "source": dict(raw["source"]),
        "langs": list(raw["langs"]),
        "max_items": raw.get("max_items"),
        "steer_langs": steer_langs,
        "selections": list(raw["selections"]),
        "conditions": list(raw["conditions"]),
        "generation": generation,
        "loglik_batch_size": int(raw.get("loglik_batch_size", generation["batch_size"])),
        "plot_metric": metric,
    }


def job_settings(settings: Mapping) -> dict:
    """What a generation job depends on (not its selections/conditions lists or plot metric),
    so that adding a selection or changing the heatmap metric reruns no generation."""
    keys = ("task", "source", "langs", "max_items", "steer_langs", "generation")
    out = {key: settings[key] for key in keys}
    if settings["task"] in MULTIPLE_CHOICE:
        out["loglik_batch_size"] = settings["loglik_batch_size"]
    return out
