"""Shared types of the task layer: one evaluation item, one task's decoding settings.

Every metric a task module returns is a percentage (0-100, like sacrebleu and the official
SQuAD script); the only exception is translation's ``anchor_sentence_bleu``, kept as the
anchor's fraction (0-1) so that it can be compared with the paper's code directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langarith.core.languages import LANGUAGES

# Test languages of XQuAD / XNLI that are not among the paper's 21 (method.md §4.5, §4.6).
EXTRA_LANGUAGE_NAMES: dict[str, str] = {
    "bg": "Bulgarian",
    "el": "Greek",
    "ro": "Romanian",
    "sw": "Swahili",
    "th": "Thai",
    "ur": "Urdu",
    "vi": "Vietnamese",
}


@dataclass(frozen=True)
class TaskItem:
    """One evaluation item, ready to be fed to a model and scored.

    ``item_id`` is stable and unique within (task, lang); ``prompt`` is the exact model input;
    ``references`` are the gold strings (translation: the reference; QA: every gold answer;
    multiple choice: the gold option text). For multiple choice, ``options`` are the
    continuations scored by log-likelihood and ``gold_index`` indexes them.

    Two fields extend the original design: ``choices`` are the human-readable option texts
    shown in the prompt (the parsers' exact-text fallback needs them), and ``target_lang``
    is the language the references are written in when it is not ``lang`` (translation
    X->English), so a scorer can pick a tokenizer without parsing ids or prompts.
    """

    item_id: str
    lang: str
    prompt: str
    references: tuple[str, ...]
    options: tuple[str, ...] = ()
    gold_index: int | None = None
    choices: tuple[str, ...] = ()
    target_lang: str | None = None

    @property
    def reference_lang(self) -> str:
        """The language of ``references`` (``target_lang`` if set, else ``lang``)."""
        return self.target_lang or self.lang


@dataclass(frozen=True)
class TaskSpec:
    """Decoding settings of a task (method.md §4.3-4.6): greedy, with these limits."""

    name: str
    max_new_tokens: int
    stop_strings: tuple[str, ...]


def language_name(code: str) -> str:
    """English name of ``code`` as used in prompts (the 21 paper languages plus XQuAD/XNLI
    extras); ``ValueError`` naming the code if unknown."""
    if code in LANGUAGES:
        return LANGUAGES[code].name
    if code in EXTRA_LANGUAGE_NAMES:
        return EXTRA_LANGUAGE_NAMES[code]
    raise ValueError(f"unknown language code {code!r} (not one of the paper's languages)")


def flores_code(code: str) -> str:
    """FLORES-200 / Belebele code of ``code``; ``ValueError`` naming the code if unknown."""
    if code not in LANGUAGES:
        raise ValueError(f"language {code!r} has no FLORES-200 code in langarith.core.languages")
    return LANGUAGES[code].flores


def flores_plus_code(code: str) -> str:
    """FLORES+ code of ``code`` (``cmn_Hans`` for zh, else the FLORES-200 code)."""
    flores_code(code)  # the same error for an unknown code
    return LANGUAGES[code].flores_plus


def check_outputs(task: str, items: Sequence[TaskItem], outputs: Sequence[object]) -> None:
    """``ValueError`` unless there is at least one item and exactly one output per item."""
    if not items:
        raise ValueError(f"{task}: no items to score")
    if len(items) != len(outputs):
        raise ValueError(f"{task}: {len(items)} items but {len(outputs)} outputs")


def first_n(rows: list, max_items: int | None, task: str) -> list:
    """The first ``max_items`` rows in file order (all if None); ``ValueError`` if negative."""
    if max_items is None:
        return rows
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 0:
        raise ValueError(f"{task}: max_items must be a non-negative integer, got {max_items!r}")
    return rows[:max_items]
