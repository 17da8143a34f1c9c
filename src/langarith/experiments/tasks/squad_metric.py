"""Exact match and F1 of extractive QA, as the official SQuAD v1.1 evaluation script defines them.

Normalisation (official v1.1, in this order): lowercase; delete ASCII punctuation
(``string.punctuation``); delete the articles ``a``, ``an``, ``the`` as whole words; collapse
whitespace. F1 counts common tokens as multisets (``Counter``) and takes precision/recall over
whitespace tokens; an empty prediction scores 0 (as in v1.1). Both metrics take the max over
the gold answers. The anchor instead skipped article removal and used token *sets*
(method.md §4.5, §8 item 8); this module follows the official script.

Languages written without spaces (``zh``, ``ja``, ``th``, see ``CHAR_LANGS``): tokens are the
single non-space characters of the normalised text, and Unicode punctuation (``，`` ``。``
``「`` ...) is deleted as well, since every such mark would otherwise be a token. Exact match
there compares the character sequences, so it ignores spaces.

Per-item values are fractions (0-1); ``qa.score`` reports percentages (0-100).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

CHAR_LANGS = frozenset({"zh", "ja", "th"})
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)


def normalize_answer(text: str, lang: str = "en") -> str:
    """The official SQuAD v1.1 normalisation (plus Unicode punctuation for ``CHAR_LANGS``)."""
    text = text.lower()
    if lang in CHAR_LANGS:
        text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    else:
        text = "".join(ch for ch in text if ch not in _ASCII_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str, lang: str = "en") -> list[str]:
    """Tokens of the normalised ``text``: words, or characters for ``CHAR_LANGS``."""
    normalized = normalize_answer(text, lang)
    if lang in CHAR_LANGS:
        return [ch for ch in normalized if not ch.isspace()]
    return normalized.split()


def _f1_single(prediction: str, gold: str, lang: str) -> float:
    pred_tokens = answer_tokens(prediction, lang)
    gold_tokens = answer_tokens(gold, lang)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, golds: Sequence[str], lang: str = "en") -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    if lang in CHAR_LANGS:
        pred = answer_tokens(prediction, lang)
        return float(any(pred == answer_tokens(gold, lang) for gold in golds))
    pred_norm = normalize_answer(prediction, lang)
    return float(any(pred_norm == normalize_answer(gold, lang) for gold in golds))


def f1_score(prediction: str, golds: Sequence[str], lang: str = "en") -> float:
    """Token F1 (0-1) of the prediction against its best-matching gold answer."""
    return max((_f1_single(prediction, gold, lang) for gold in golds), default=0.0)
