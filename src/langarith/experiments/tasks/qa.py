"""Extractive QA on XQuAD (method.md §4.5): prompt, loading, EM/F1 scoring.

Layouts: local / builtin = ``<dir>/xquad.<lang>.json`` (or the file itself) in SQuAD v1.1
JSON. Hub = ``google/xquad`` (``"config": "xquad.{lang}"``, split ``validation``) with flat rows
``id, context, question, answers{text[], answer_start[]}``; rows that are SQuAD articles
(``"path": "json"``, ``"field": "data"`` over a local file) are read as well.

Metrics (see ``squad_metric``): ``exact_match`` and ``f1`` in percent (0-100), max over the
gold answers, averaged over questions, with the official SQuAD v1.1 normalisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langarith.experiments.tasks.base import (
    TaskItem,
    TaskSpec,
    check_outputs,
    first_n,
    language_name,
)
from langarith.experiments.tasks.readers import read_json, require_field, require_text
from langarith.experiments.tasks.sources import check_source, describe_hub, load_hub_rows, local_dir
from langarith.experiments.tasks.squad_metric import exact_match, f1_score

SPEC = TaskSpec(
    name="qa",
    max_new_tokens=64,
    stop_strings=("\n\n", "Question:", "Context:", "Answer:", "Q:", "A:"),
)
DEFAULT_SPLIT = "validation"


def make_prompt(context: str, question: str, lang: str) -> str:
    """The anchor's XQuAD prompt for a context in language ``lang``."""
    return (
        f"Answer the question based on the {language_name(lang)} context provided. "
        "Extract the exact answer from the context.\n\n"
        f"Context: {context}\n\n"
        f"Question: {question}\n\n"
        "Answer:"
    )


def _answers(value: Any, where: str) -> tuple[str, ...]:
    """Gold answer texts from ``[{"text": ...}]`` (SQuAD) or ``{"text": [...]}`` (hub)."""
    if isinstance(value, Mapping):
        texts = value.get("text")
    elif isinstance(value, list):
        texts = [a.get("text") if isinstance(a, Mapping) else None for a in value]
    else:
        texts = None
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{where}: field 'answers' has no answer texts")
    return tuple(texts)


def _item(row: Mapping[str, Any], context: str, lang: str, where: str) -> TaskItem:
    item_id = str(require_field(row, "id", where))
    here = f"{where} question {item_id}"
    return TaskItem(
        item_id=item_id,
        lang=lang,
        prompt=make_prompt(context, require_text(row, "question", here), lang),
        references=_answers(require_field(row, "answers", here), here),
    )


def _from_rows(rows: list, lang: str, where: str) -> list[TaskItem]:
    """Items from SQuAD articles (``paragraphs`` / ``qas``) or flat rows, in order."""
    items: list[TaskItem] = []
    for a, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"{where}: entry {a} is not an object")
        if "paragraphs" not in row:
            items.append(_item(row, require_text(row, "context", where), lang, where))
            continue
        for p, paragraph in enumerate(row["paragraphs"] or []):
            here = f"{where} article {a} paragraph {p}"
            context = require_text(paragraph, "context", here)
            for question in require_field(paragraph, "qas", here):
                items.append(_item(question, context, lang, here))
    return items


def _local_items(directory: Path, lang: str) -> list[TaskItem]:
    path = directory if directory.is_file() else directory / f"xquad.{lang}.json"
    document = read_json(path, lang)
    articles = require_field(document, "data", str(path))
    if not isinstance(articles, list):
        raise ValueError(f"{path}: field 'data' must be a list of articles")
    return _from_rows(articles, lang, str(path))


def load_items(source: dict, lang: str, max_items: int | None = None) -> list[TaskItem]:
    """XQuAD items for ``lang``, first ``max_items`` questions in file order."""
    kind = check_source(source, "qa")
    language_name(lang)  # unknown codes fail before any loading
    if kind == "hub":
        rows = load_hub_rows(source, lang, DEFAULT_SPLIT)
        items = _from_rows(rows, lang, describe_hub(source, lang))
    else:
        items = _local_items(local_dir(source, "qa"), lang)
    if not items:
        raise ValueError(f"qa: no questions found for language {lang!r}")
    return first_n(items, max_items, "qa")


def score_item(item: TaskItem, output: str) -> dict[str, float]:
    """``exact_match`` and ``f1`` of one answer, as fractions (0-1)."""
    return {
        "exact_match": exact_match(output, item.references, item.lang),
        "f1": f1_score(output, item.references, item.lang),
    }


def score(items: list[TaskItem], outputs: list[str]) -> dict[str, float]:
    """Mean ``exact_match`` and ``f1`` over questions, in percent (0-100)."""
    check_outputs("qa", items, outputs)
    per_item = [score_item(item, out) for item, out in zip(items, outputs, strict=True)]
    return {
        metric: 100.0 * sum(s[metric] for s in per_item) / len(per_item)
        for metric in ("exact_match", "f1")
    }
