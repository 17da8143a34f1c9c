"""Which XNLI label a generated answer names (0 entailment, 1 neutral, 2 contradiction), or None.

The anchor's rules (method.md §4.6), kept by default for parity, on the lower-cased,
stripped answer:

1. a leading digit ``1`` / ``2`` / ``3`` -> entailment / neutral / contradiction;
2. else the substring ``entailment``, then ``contradiction``, then ``neutral`` (that order);
3. else yes / true / correct -> entailment, no / false / incorrect -> contradiction;
4. else None (scored as wrong).

Quirk (§8 item 8), documented rather than changed: rule 3 treats "yes"/"no" as entailment/
contradiction, but a plain "no" to "does the premise entail the hypothesis?" may equally mean
neutral, so it credits a guess. ``strict=True`` drops rule 3 (yes/no answers give None).
The anchor's exact string test for rule 3 is not recorded; here the words must be whole words,
so "incorrect" is not "correct" and "not"/"know" are not "no".
"""

from __future__ import annotations

import re

LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")
_DIGITS = {"1": 0, "2": 1, "3": 2}
_SUBSTRINGS = (("entailment", 0), ("contradiction", 2), ("neutral", 1))
_YES = re.compile(r"\b(?:yes|true|correct)\b")
_NO = re.compile(r"\b(?:no|false|incorrect)\b")


def parse_nli_label(answer: str, strict: bool = False) -> int | None:
    """Label index named by ``answer`` (anchor rules; ``strict`` ignores yes/no words)."""
    text = answer.strip().lower()
    if not text:
        return None
    if text[0] in _DIGITS:
        return _DIGITS[text[0]]
    for word, label in _SUBSTRINGS:
        if word in text:
            return label
    if strict:
        return None
    if _YES.search(text):
        return 0
    if _NO.search(text):
        return 2
    return None
