"""Which option letter (A-D) a generated multiple-choice answer names, or None.

The anchor (method.md §4.4, §8 item 8) upper-cases the answer, accepts "X " (letter + space)
and finally falls back to the first character, so "According to the passage, B" and
"A dog ..." both count as option A. Here a letter counts only when it stands alone, tried in
this order (first hit wins):

1. the whole answer is one letter, optionally bracketed or followed by ``.``/``:``:
   ``B``, ``b``, ``(B)``, ``B)``, ``[B]``, ``B.``;
2. the answer starts with a labelled letter: ``(B) ...``, ``B) ...``, ``B. ...``, ``B: ...``
   (lower case only as ``b)`` / ``(b)``);
3. an explicit phrase: ``answer: B``, ``the answer is B``, ``option B``, ``choice (C)``
   (keywords in any case; a lower-case letter only when punctuation or the end follows it, so
   "the answer is a dog" is not A);
4. an upper-case letter A-D that is a whole token anywhere (not part of a word, a
   contraction, a hyphenated name or an abbreviation like "A.M."), except a sentence-initial
   "A" followed by a lower-case word, which is the English article ("A dog ...");
5. fallback: the text of exactly one option occurs in the answer (case, punctuation and
   spacing ignored; whole words), e.g. "More speed".

Unparseable answers give None (scored as wrong).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

LETTERS = "ABCD"

_WHOLE = re.compile(r"[(\[]?\s*([A-Da-d])\s*[)\]]?\s*[.:]?")
_LEADING = (
    re.compile(r"[(\[]\s*([A-Da-d])\s*[)\]]"),
    re.compile(r"([a-d])\)"),
    re.compile(r"([A-D])\s*[).:](?![\w])"),
)
_KEYWORD = r"(?i:\b(?:the\s+)?(?:correct\s+|right\s+|best\s+)?(?:answer|option|choice))"
_PHRASE_UPPER = re.compile(
    _KEYWORD + r"(?i:\s+is)?\s*[:=]?\s*(?i:(?:option|choice)\s+)?[(\[]?\s*([A-D])(?![\w'’-])"
)
_PHRASE_LOWER = re.compile(
    _KEYWORD
    + r"(?i:\s+is)?\s*[:=]?\s*(?i:(?:option|choice)\s+)?[(\[]?\s*([a-d])\s*(?=[)\].,:;!?]|$)"
)
_TOKEN = re.compile(r"(?<![\w'’.-])([A-D])(?![\w'’-]|\.\w)")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)$")
_ARTICLE_NEXT = re.compile(r"\s+[a-z]")


def _norm(text: str) -> str:
    """Case-folded text without punctuation, single-spaced."""
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(kept.casefold().split())


def _is_article(text: str, start: int, end: int) -> bool:
    """True if the "A" at ``text[start:end]`` reads as the English article."""
    return (
        text[start:end] == "A"
        and _SENTENCE_START.search(text[:start]) is not None
        and _ARTICLE_NEXT.match(text, end) is not None
    )


def match_option_text(answer: str, choices: Sequence[str]) -> int | None:
    """Index of the single option whose text occurs in ``answer`` (whole words), or None."""
    norm_answer = f" {_norm(answer)} "
    hits = [i for i, c in enumerate(choices) if _norm(c) and f" {_norm(c)} " in norm_answer]
    if len(hits) > 1:  # one option text inside another: prefer an exact match
        hits = [i for i in hits if f" {_norm(choices[i])} " == norm_answer]
    return hits[0] if len(hits) == 1 else None


def parse_letter(answer: str, choices: Sequence[str] = (), letters: str = LETTERS) -> int | None:
    """Index (0-based) of the option named by ``answer``, or None (see the module doc)."""
    text = answer.strip()
    if not text:
        return None
    found: str | None = None
    whole = _WHOLE.fullmatch(text)
    if whole:
        found = whole.group(1)
    for pattern in _LEADING:
        if found is None and (m := pattern.match(text)):
            found = m.group(1)
    for pattern in (_PHRASE_UPPER, _PHRASE_LOWER):
        if found is None and (m := pattern.search(text)):
            found = m.group(1)
    if found is None:
        for m in _TOKEN.finditer(text):
            if not _is_article(text, m.start(1), m.end(1)):
                found = m.group(1)
                break
    if found is not None and found.upper() in letters:
        return letters.index(found.upper())
    return match_option_text(text, choices) if choices else None
