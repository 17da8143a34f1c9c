"""The ``quality`` section: text-measure settings with their defaults, the strength
calibration (``quality.calibration``) resolved and checked against its uses, and the layer
sweep of residual steps (``quality.layer_sweep``)."""

from __future__ import annotations

from collections.abc import Mapping

from langarith.core.conditions import parse_condition
from langarith.experiments.calibration import ACTIVATION_OPS

QUALITY_DEFAULTS = {
    "ngram": 3,
    "max_period": 8,
    "max_repetition": 0.5,
    "perplexity": True,
    "batch_size": 16,
}


def resolve_quality(config: Mapping) -> dict | None:
    """The ``quality`` section with defaults (without its ``calibration`` part), or ``None``."""
    if "quality" not in config:
        return None
    raw = {
        k: v
        for k, v in dict(config["quality"] or {}).items()
        if k not in ("calibration", "layer_sweep")
    }
    return {**QUALITY_DEFAULTS, **raw}


LAYER_SWEEP_DEFAULTS = {
    "sources": ["en"],
    "targets": None,
    "questions": "resources/prompts/calibration.tsv",
}


def resolve_layer_sweep(config: Mapping) -> dict | None:
    """``quality.layer_sweep`` with defaults, or ``None`` when it is not configured; checked
    against its uses: every forcing condition with ``layers: best`` needs it.

    ``targets`` (also when ``all``) default to the forcing targets; generation settings are the
    forcing ones with ``max_new_tokens``/``batch_size`` overridable here; ``ngram`` and
    ``max_repetition`` are the ``quality`` section's.
    """
    from langarith.workflow.settings.checks import forcing_targets

    raw = (config.get("quality") or {}).get("layer_sweep")
    swept = [
        name
        for name in config["forcing"]["conditions"]
        if parse_condition(name, config["conditions"][name]).swept
    ]
    if not raw:
        if swept:
            raise ValueError(
                f"forcing.conditions: {swept[0]!r} has layers 'best' but quality.layer_sweep "
                "is not configured"
            )
        return None
    out = {**LAYER_SWEEP_DEFAULTS, **dict(raw)}
    if out["targets"] in (None, "all"):
        out["targets"] = forcing_targets(config)
    for key in ("sources", "targets"):
        for code in out[key]:
            if code not in config["languages"]:
                raise ValueError(
                    f"quality.layer_sweep.{key}: {code!r} is not a configured language"
                )
    quality = resolve_quality(config) or {}
    out["ngram"] = int(quality.get("ngram", 3))
    out["max_repetition"] = float(quality.get("max_repetition", 0.5))
    generation = dict(config["forcing"]["generation"])
    for key in ("max_new_tokens", "batch_size"):
        if key in out:
            generation[key] = out.pop(key)
    out["generation"] = generation
    out["layers"] = [int(layer) for layer in out["layers"]]
    return out


def check_calibrated_uses(
    config: Mapping, calibration: Mapping | None, logit_lens: Mapping | None = None
) -> None:
    """Every use of a calibrated condition (``strength: calibrated``) must be covered by the
    calibration: its selections calibrated, and every language it steers towards among the
    calibration targets. Raises a one-line ``ValueError`` naming the config key otherwise."""
    from langarith.workflow.settings.checks import forcing_targets
    from langarith.workflow.settings.tasks import steer_languages

    uses = []  # (where, selections, conditions, target languages)
    forcing = config.get("forcing") or {}
    if forcing:
        uses.append(
            (
                "forcing.conditions",
                forcing["selections"],
                forcing["conditions"],
                forcing_targets(config),
            )
        )
    for name, task in (config.get("tasks") or {}).items():
        steer = steer_languages(task, config["languages"])
        uses.append(
            (
                f"tasks.{name}.conditions",
                task.get("selections", []),
                task.get("conditions", []),
                steer,
            )
        )
    if logit_lens:
        uses.append(
            (
                "analysis.logit_lens.condition",
                [logit_lens["selection"]],
                [logit_lens["condition"]],
                logit_lens["targets"],
            )
        )
    for where, selections, conditions, targets in uses:
        for condition in conditions:
            if not parse_condition(condition, config["conditions"].get(condition)).calibrated:
                continue
            if calibration is None:
                raise ValueError(
                    f"{where}: {condition!r} has strength 'calibrated' but "
                    "quality.calibration is not configured"
                )
            for selection in selections:
                if selection not in calibration["selections"]:
                    raise ValueError(
                        f"{where}: {condition!r} needs selection {selection!r} "
                        "in quality.calibration.selections"
                    )
            missing = [t for t in targets if t not in calibration["targets"]]
            if missing:
                raise ValueError(
                    f"{where}: {condition!r} needs an α for {' '.join(missing)}; "
                    "add them to quality.calibration.targets"
                )


CALIBRATION_DEFAULTS = {
    "grid": [0.5, 1.0, 2.0, 4.0],
    "sources": ["en"],
    "targets": None,
    "questions": "resources/prompts/calibration.tsv",
}


def resolve_calibration(config: Mapping) -> dict | None:
    """``quality.calibration`` with defaults, or ``None`` when it is not configured.

    ``selections`` default to the forcing selections, ``condition`` to the forcing condition
    the findings use, ``targets`` (also when ``all``) to the forcing targets; generation
    settings are the forcing ones, with ``max_new_tokens``/``batch_size`` overridable here.
    ``ngram`` and ``max_repetition`` are the ``quality`` section's.
    """
    from langarith.workflow.settings.analysis import main_condition
    from langarith.workflow.settings.checks import forcing_targets
    from langarith.workflow.settings.quality import resolve_quality

    raw = (config.get("quality") or {}).get("calibration")
    if not raw:
        return None
    out = {**CALIBRATION_DEFAULTS, **dict(raw)}
    out.setdefault("selections", list(config["forcing"]["selections"]))
    out.setdefault("condition", main_condition(config))
    if out["targets"] in (None, "all"):
        out["targets"] = forcing_targets(config)
    quality = resolve_quality(config) or {}
    out["ngram"] = int(quality.get("ngram", 3))
    out["max_repetition"] = float(quality.get("max_repetition", 0.5))
    generation = dict(config["forcing"]["generation"])
    for key in ("max_new_tokens", "batch_size"):
        if key in out:
            generation[key] = out.pop(key)
    out["generation"] = generation
    condition = out["condition"]
    if condition is None or condition not in config["conditions"]:
        raise ValueError(f"quality.calibration.condition: {condition!r} is not a condition")
    ops = parse_condition(condition, config["conditions"][condition]).ops
    if not any(op in ACTIVATION_OPS for op in ops):
        raise ValueError(
            f"quality.calibration.condition: {condition!r} has no additive step to scale"
        )
    for sel in out["selections"]:
        if sel not in config["selections"]:
            raise ValueError(f"quality.calibration.selections: {sel!r} is not a selection")
    for key in ("sources", "targets"):
        for code in out[key]:
            if code not in config["languages"]:
                raise ValueError(
                    f"quality.calibration.{key}: {code!r} is not a configured language"
                )
    return out
