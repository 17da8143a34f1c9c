"""The ``analysis`` config section with its defaults filled in (plain builtins, for ``params:``).

Every key is optional; the defaults measure the paper's claims as method.md §6.1 states them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from langarith.core.conditions import Step, parse_condition

# The 11 high-resource languages of the anchor's fallback order (method.md §4.2).
HIGH_RESOURCE = ["en", "fr", "es", "it", "pt", "ru", "de", "ar", "zh", "ko", "ja"]

DEFAULTS: dict = {
    "selection": None,  # the selection the findings table reports; None = first forcing one
    "condition": None,  # the forcing condition of the forcing claims; None = see below
    "additive_condition": None,  # None = found from the replacement condition
    "replacement_condition": None,  # None = the forcing condition with a `replace` step
    "residual_condition": None,  # None = the first forcing condition steering the residual only
    "related_pairs": [["da", "no"], ["es", "pt"], ["ru", "pl"]],
    "unrelated_pairs": [["en", "zh"]],
    "high_resource": HIGH_RESOURCE,
    "deep_fraction": 1 / 3,
    "fallback_source": "en",
    "task_metrics": {"translation": "chrf++", "qa": "f1", "reading": "accuracy", "nli": "accuracy"},
    "thresholds": {
        "deep_share": 0.5,  # share of assignments in the last third (uniform: 1/3)
        "script_ratio": 1.0,  # non-Latin ÷ Latin mean neurons per language
        "overlap_margin": 0.0,  # Jaccard: min related − max unrelated
        "success_margin": 0.05,  # differences of forcing success rates (0-1)
        "task_gain": 1.0,  # metric points (tasks report 0-100)
        "fallback_share": 0.5,  # share of answers not in the prompt language
    },
}


def _steps(config: Mapping, name: str) -> tuple[Step, ...]:
    return parse_condition(name, config["conditions"].get(name)).steps


def _activation_ops(steps: Sequence[Step]) -> list[str]:
    return [s.op for s in steps if s.lang == "target"]


def replacement_pair(config: Mapping) -> tuple[str | None, str | None]:
    """``(additive, replacement)`` forcing conditions to compare, or ``(None, None)``.

    The replacement condition is the first forcing condition with a ``replace`` step; its
    additive twin is the forcing condition with the same steps except ``add`` in place of
    ``replace`` (else the first forcing condition that adds to the target's neurons).
    """
    forcing = list(config["forcing"]["conditions"])
    replacement = next(
        (c for c in forcing if "replace" in _activation_ops(_steps(config, c))), None
    )
    if replacement is None:
        return None, None

    def shape(name: str, op_from: str) -> list[tuple]:
        out = []
        for s in _steps(config, name):
            op = "add" if s.op == op_from else s.op
            out.append((op, s.lang, s.value, s.layers))
        return out

    twin = shape(replacement, "replace")
    adders = [
        c for c in forcing if c != replacement and "add" in _activation_ops(_steps(config, c))
    ]
    for name in adders:
        if shape(name, "add") == twin:
            return name, replacement
    return (adders[0] if adders else None), replacement


def residual_condition(config: Mapping) -> str | None:
    """The first forcing condition whose every step is a residual-stream step (no neurons, no
    instruction): the residual DiffMean method of the CLaS-Bench claim."""
    for name in config["forcing"]["conditions"]:
        steps = _steps(config, name)
        if steps and all(s.site == "residual" for s in steps):
            return name
    return None


def main_condition(config: Mapping) -> str | None:
    """The steered forcing condition the forcing claims use: ``deactivate-activate`` if it is a
    forcing condition (the paper's Figure 1), else the first steered one."""
    steered = [c for c in config["forcing"]["conditions"] if _steps(config, c)]
    if "deactivate-activate" in steered:
        return "deactivate-activate"
    return steered[0] if steered else None


def resolve_analysis(config: Mapping) -> dict:
    """The ``analysis`` section merged over :data:`DEFAULTS`, with the conditions and selection
    resolved against the rest of ``config``."""
    raw = dict(config.get("analysis") or {})
    out = copy.deepcopy(DEFAULTS)
    for key, value in raw.items():
        if key == "thresholds":
            out["thresholds"].update(value or {})
        elif key == "task_metrics":
            out["task_metrics"].update(value or {})
        else:
            out[key] = copy.deepcopy(value)
    if out["selection"] is None:
        out["selection"] = config["forcing"]["selections"][0]
    if out["condition"] is None:
        out["condition"] = main_condition(config)
    if out["replacement_condition"] is None:
        additive, replacement = replacement_pair(config)
        out["replacement_condition"] = replacement
        if out["additive_condition"] is None:
            out["additive_condition"] = additive
    if out["residual_condition"] is None:
        out["residual_condition"] = residual_condition(config)
    out["baseline_conditions"] = [c for c in config["conditions"] if not _steps(config, c)]
    out.pop("logit_lens", None)
    return out


def check_analysis(config: Mapping) -> None:
    """``ValueError`` naming the key for a selection/condition/language the config lacks."""
    analysis = config.get("analysis") or {}
    selections, conditions = config["selections"], config["conditions"]
    forcing = config["forcing"]
    if analysis.get("selection") is not None:
        if analysis["selection"] not in forcing["selections"]:
            raise ValueError(
                f"analysis.selection: {analysis['selection']!r} is not one of forcing.selections"
            )
    for key in ("condition", "additive_condition", "replacement_condition", "residual_condition"):
        if analysis.get(key) is not None and analysis[key] not in forcing["conditions"]:
            raise ValueError(f"analysis.{key}: {analysis[key]!r} is not one of forcing.conditions")
    languages = config["languages"]
    for key in ("related_pairs", "unrelated_pairs"):
        for pair in analysis.get(key) or []:
            missing = [code for code in pair if code not in languages]
            if missing:
                raise ValueError(
                    f"analysis.{key}: the pair {list(pair)} names {' '.join(missing)}, not a "
                    "configured language (its claim would drop the pair and still name it)"
                )
    for code in analysis.get("high_resource") or []:
        if code not in languages:
            raise ValueError(f"analysis.high_resource: {code!r} is not a configured language")
    lens = analysis.get("logit_lens")
    if lens:
        if lens.get("selection") is not None and lens["selection"] not in selections:
            raise ValueError(f"analysis.logit_lens.selection: {lens['selection']!r} is unknown")
        if lens.get("condition") is not None and lens["condition"] not in conditions:
            raise ValueError(f"analysis.logit_lens.condition: {lens['condition']!r} is unknown")
        for key in ("sources", "targets"):
            for code in lens.get(key, []):
                if code not in config["languages"]:
                    raise ValueError(
                        f"analysis.logit_lens.{key}: {code!r} is not a configured language"
                    )


LENS_DEFAULTS = {"sources": ["en"], "targets": None, "top_k": 5, "batch_size": 16}


def resolve_logit_lens(config: Mapping) -> dict | None:
    """``analysis.logit_lens`` with defaults, or ``None`` when it is not configured.

    Defaults: the first forcing selection, the forcing claims' condition, English prompts, and
    four targets (the first configured languages other than the sources).
    """
    raw = (config.get("analysis") or {}).get("logit_lens")
    if not raw:
        return None
    out = {**copy.deepcopy(LENS_DEFAULTS), **copy.deepcopy(dict(raw))}
    out.setdefault("selection", None)
    out.setdefault("condition", None)
    if out["selection"] is None:
        out["selection"] = config["forcing"]["selections"][0]
    if out["condition"] is None:
        out["condition"] = main_condition(config)
    if out["condition"] is None or not _steps(config, out["condition"]):
        raise ValueError("analysis.logit_lens.condition: needs a steered condition")
    if out["targets"] is None:
        out["targets"] = [c for c in config["languages"] if c not in out["sources"]][:4]
    return out
