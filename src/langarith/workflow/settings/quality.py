"""The ``quality`` section: text-measure settings with their defaults, output relevance
(``quality.relevance``), the strength calibration (``quality.calibration``) resolved and checked
against their uses, and the layer sweep of residual steps (``quality.layer_sweep``)."""

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
    """The ``quality`` section with defaults (without its ``calibration`` part), or ``None``;
    ``relevance`` is :func:`resolve_relevance`'s, present only when configured (so a config
    without it gives the quality jobs the parameters they had)."""
    if "quality" not in config:
        return None
    skip = ("calibration", "relevance", "layer_sweep", "native")
    raw = {k: v for k, v in dict(config["quality"] or {}).items() if k not in skip}
    out = {**QUALITY_DEFAULTS, **raw}
    relevance = resolve_relevance(config, out["batch_size"])
    if relevance is not None:
        out["relevance"] = relevance
    return out


def resolve_native(config: Mapping) -> dict | None:
    """How the ``native_prompting`` job judges answers (``ngram``, ``max_repetition`` of the
    quality section), or ``None`` when ``quality`` is not configured or ``quality.native`` is
    ``false``; kept out of :func:`resolve_quality` so that turning it on or off reruns no
    quality job."""
    quality = resolve_quality(config)
    if quality is None or not (config.get("quality") or {}).get("native", True):
        return None
    return {"ngram": int(quality["ngram"]), "max_repetition": float(quality["max_repetition"])}


RELEVANCE_DEFAULTS = {
    "encoder": "e5",
    "layer": "middle",
    "max_tokens": 512,
    "pivot": "en",
    "max_documents": None,
}
ENCODERS = ("e5", "model")
ALIGNED_CORPORA = ("udhr", "local")  # kinds whose documents align across languages by id/line


def resolve_relevance(config: Mapping, batch_size: int = 16) -> dict | None:
    """``quality.relevance`` with defaults, or ``None`` when it is not configured (or ``false``).

    ``reference``: the forcing grid's unsteered condition, whose answers the others' are compared
    with; ``validate`` (default: the corpus is ``udhr``) measures the encoder on the corpus's
    documents aligned across languages. Raises a one-line ``ValueError`` naming the key.
    """
    from langarith.core.conditions import unsteered_condition

    raw = (config.get("quality") or {}).get("relevance")
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    out = {**RELEVANCE_DEFAULTS, "batch_size": batch_size, **dict(raw)}
    if out["encoder"] not in ENCODERS:
        raise ValueError(
            f"quality.relevance.encoder: {out['encoder']!r} is not one of {', '.join(ENCODERS)}"
        )
    if out["encoder"] == "e5":
        import importlib.util

        from langarith.model.e5 import PACKAGE

        if importlib.util.find_spec(PACKAGE) is None:
            raise ValueError(
                f"quality.relevance.encoder: 'e5' needs the package {PACKAGE}, which is not "
                "installed (envs/requirements.lock; or use encoder: model)"
            )
    layer = out["layer"]
    if layer != "middle" and (isinstance(layer, bool) or not isinstance(layer, int) or layer < 0):
        raise ValueError(
            f"quality.relevance.layer: {layer!r} is neither 'middle' nor a layer number"
        )
    forcing = config.get("forcing") or {}
    reference = unsteered_condition(forcing.get("conditions", []), config["conditions"])
    if reference is None:
        raise ValueError(
            "quality.relevance: forcing.conditions has no unsteered condition (one without "
            "steps) whose answers the steered ones are compared with"
        )
    out["reference"] = reference
    if out["pivot"] not in config["languages"]:
        raise ValueError(f"quality.relevance.pivot: {out['pivot']!r} is not a configured language")
    kind = config["corpus"]["kind"]
    out.setdefault("validate", kind == "udhr")
    if out["validate"] and kind not in ALIGNED_CORPORA:
        raise ValueError(
            f"quality.relevance.validate: a {kind!r} corpus has no documents aligned across "
            f"languages (aligned kinds: {', '.join(ALIGNED_CORPORA)}); set validate: false"
        )
    return out


def check_relevance_layer(config: Mapping, relevance: Mapping | None, prepared) -> None:
    """A numbered ``quality.relevance.layer`` of the ``model`` encoder lies within every model's
    layers, where the layer count can be read before any job."""
    from langarith.workflow.settings.checks import model_layer_count

    if not relevance or relevance["encoder"] != "model" or relevance["layer"] == "middle":
        return
    layer = relevance["layer"]
    for name, model in config["models"].items():
        found = model_layer_count(name, model, prepared)
        if found is not None and layer >= found[0]:
            n, where = found
            raise ValueError(
                f"quality.relevance.layer: {layer} is beyond model {name!r}, which has "
                f"{n} layers (0-{n - 1}; {where})"
            )


def _add_judging(out: dict, config: Mapping) -> dict:
    """What a calibration-prompt sweep judges with, into ``out``: the ``quality`` section's
    ``ngram`` and ``max_repetition``, and the forcing generation settings with ``out``'s
    ``max_new_tokens``/``batch_size`` moved into them; returns the resolved ``quality``."""
    quality = resolve_quality(config) or {}
    out["ngram"] = int(quality.get("ngram", 3))
    out["max_repetition"] = float(quality.get("max_repetition", 0.5))
    generation = dict(config["forcing"]["generation"])
    for key in ("max_new_tokens", "batch_size"):
        if key in out:
            generation[key] = out.pop(key)
    out["generation"] = generation
    return quality


LAYER_SWEEP_DEFAULTS = {
    "sources": ["en"],
    "targets": None,
    "questions": "resources/prompts/calibration.tsv",
}


def resolve_layer_sweep(config: Mapping) -> dict | None:
    """``quality.layer_sweep`` with defaults, or ``None`` when it is not configured; checked
    against its uses: every forcing condition with ``layers: best`` needs it.

    ``targets`` (also when ``all``) default to the forcing targets; generation settings are the
    forcing ones with ``max_new_tokens``/``batch_size`` overridable here; ``ngram``,
    ``max_repetition`` and ``relevance`` (when configured) are the ``quality`` section's.
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
    quality = _add_judging(out, config)
    out["layers"] = [int(layer) for layer in out["layers"]]
    relevance = quality.get("relevance")
    if relevance is not None:
        out["relevance"] = relevance
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

    raw = (config.get("quality") or {}).get("calibration")
    if not raw:
        return None
    out = {**CALIBRATION_DEFAULTS, **dict(raw)}
    out.setdefault("selections", list(config["forcing"]["selections"]))
    out.setdefault("condition", main_condition(config))
    if out["targets"] in (None, "all"):
        out["targets"] = forcing_targets(config)
    _add_judging(out, config)
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
