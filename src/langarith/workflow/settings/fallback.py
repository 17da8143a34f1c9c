"""The ``fallback`` section resolved to plain builtins and checked."""

from __future__ import annotations

from collections.abc import Mapping

from langarith.experiments.fallback import ORDER, STOP_STRINGS, VALUE

GENERATION_DEFAULTS = {
    "max_new_tokens": 128,
    "repetition_penalty": 1.1,
    "stop_strings": list(STOP_STRINGS),
    "batch_size": 16,
    "positions": "all",  # steered positions: all | prompt | generated
}


def resolve_fallback(raw: Mapping, config: Mapping) -> dict:
    """The fallback settings as plain builtins; ``ValueError`` naming a bad key."""
    languages = list(config["languages"])
    for sel in raw["selections"]:
        if sel not in config["selections"]:
            raise ValueError(f"fallback.selections: {sel!r} is not a key of selections")
    order = list(raw.get("order", ORDER))
    if len(set(order)) != len(order):
        raise ValueError("fallback.order: a language is listed twice")
    used = [code for code in order if code in languages]
    if not used:
        raise ValueError("fallback.order: none of these languages is configured")
    return {
        "selections": list(raw["selections"]),
        "order": used,
        "value": float(raw.get("value", VALUE)),
        "prompts": str(raw.get("prompts", "resources/prompts/fallback_en.txt")),
        "max_prompts": raw.get("max_prompts"),
        "generation": {**GENERATION_DEFAULTS, **dict(raw.get("generation") or {})},
    }
