"""Reading comprehension on Belebele (method.md §4.4): prompt, loading, answer parsing, accuracy.

Two row schemas are read, detected per row by their fields:

* original Belebele (``facebook/belebele`` on the hub, config ``{flores}``, split ``test``):
  one row per question with ``flores_passage, question, mc_answer1..4, correct_answer_num``
  (1-4), ids from ``link`` and ``question_number``;
* the converted schema of ``/work/shared/data/belebele`` (README §4): one row per passage
  ``{"text", "items": [{"question", "answers": [{"text", "correct"}]}], "metadata"}``, ids
  from ``metadata.extra.url`` and the question's position (1-based).

Local / builtin layout: ``<dir>/<flores_code>.jsonl`` (or the file itself).

Scoring: ``score`` parses the generated answer with ``letter_parser.parse_letter`` (a
standalone letter only, unlike the anchor, then the option text) and reports ``accuracy`` and
``parse_rate`` in percent; ``score_loglik`` scores the options ``" A" .. " D"`` by argmax.
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
    flores_code,
    language_name,
)
from langarith.experiments.tasks.choice_scoring import loglik_accuracy, parsed_accuracy
from langarith.experiments.tasks.letter_parser import LETTERS, parse_letter
from langarith.experiments.tasks.readers import read_jsonl, require_field, require_text
from langarith.experiments.tasks.sources import check_source, describe_hub, load_hub_rows, local_dir

SPEC = TaskSpec(
    name="reading",
    max_new_tokens=32,
    stop_strings=("\n\n", "Question:", "Passage:", "Answer:", "The answer"),
)
OPTIONS: tuple[str, ...] = tuple(f" {letter}" for letter in LETTERS)
DEFAULT_SPLIT = "test"


def make_prompt(passage: str, question: str, choices: tuple[str, ...], lang: str) -> str:
    """The anchor's Belebele prompt: instruction, passage, question, four lettered options."""
    lines = "\n".join(f"{letter}) {text}" for letter, text in zip(LETTERS, choices, strict=True))
    return (
        f"Read the following {language_name(lang)} passage and answer the question.\n\n"
        f"Passage: {passage}\n\n"
        f"Question: {question}\n\n"
        f"{lines}\n\n"
        "Answer:"
    )


def _item(
    item_id: str, passage: str, question: str, choices: tuple[str, ...], gold: int, lang: str
) -> TaskItem:
    return TaskItem(
        item_id=item_id,
        lang=lang,
        prompt=make_prompt(passage, question, choices, lang),
        references=(choices[gold],),
        options=OPTIONS,
        gold_index=gold,
        choices=choices,
    )


def _from_original(row: Mapping[str, Any], index: int, lang: str, where: str) -> TaskItem:
    choices = tuple(require_text(row, f"mc_answer{k}", where) for k in range(1, 5))
    raw = require_field(row, "correct_answer_num", where)
    if str(raw).strip() not in ("1", "2", "3", "4"):
        raise ValueError(f"{where}: field 'correct_answer_num' is {raw!r}, expected 1-4")
    number = row.get("question_number")
    item_id = f"{row['link']}#q{number}" if row.get("link") and number else f"{index:04d}"
    passage = require_text(row, "flores_passage", where)
    question = require_text(row, "question", where)
    return _item(item_id, passage, question, choices, int(str(raw).strip()) - 1, lang)


def _from_converted(row: Mapping[str, Any], index: int, lang: str, where: str) -> list[TaskItem]:
    passage = require_text(row, "text", where)
    extra = (row.get("metadata") or {}).get("extra") or {}
    stem = extra.get("url") or f"p{index:04d}"
    items = []
    for k, question in enumerate(require_field(row, "items", where), start=1):
        here = f"{where} question {k}"
        answers = require_field(question, "answers", here)
        if not isinstance(answers, list) or len(answers) != 4:
            raise ValueError(f"{here}: field 'answers' must hold 4 answers")
        choices = tuple(require_text(a, "text", here) for a in answers)
        correct = [i for i, a in enumerate(answers) if a.get("correct") is True]
        if len(correct) != 1:
            raise ValueError(f"{here}: field 'correct' is true for {len(correct)} answers, not 1")
        text = require_text(question, "question", here)
        items.append(_item(f"{stem}#q{k}", passage, text, choices, correct[0], lang))
    return items


def _from_rows(rows: list, lang: str, where: str) -> list[TaskItem]:
    items: list[TaskItem] = []
    for index, row in enumerate(rows):
        here = f"{where}:{index + 1}"
        if isinstance(row, Mapping) and "items" in row:
            items += _from_converted(row, index, lang, here)
        elif isinstance(row, Mapping) and "flores_passage" in row:
            items.append(_from_original(row, index, lang, here))
        else:
            raise ValueError(
                f"{here}: neither field 'items' (converted schema) nor 'flores_passage' (original)"
            )
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"{where}: duplicate question id {duplicate!r} (language {lang!r})")
    return items


def load_items(source: dict, lang: str, max_items: int | None = None) -> list[TaskItem]:
    """Belebele items for ``lang``, first ``max_items`` questions in file order."""
    kind = check_source(source, "reading")
    code = flores_code(lang)
    if kind == "hub":
        items = _from_rows(
            load_hub_rows(source, lang, DEFAULT_SPLIT), lang, describe_hub(source, lang)
        )
    else:
        directory = local_dir(source, "reading")
        path = directory if directory.is_file() else directory / f"{code}.jsonl"
        items = _from_rows(read_jsonl(Path(path), lang), lang, str(path))
    if not items:
        raise ValueError(f"reading: no questions found for language {lang!r}")
    return first_n(items, max_items, "reading")


def predict(item: TaskItem, output: str) -> int | None:
    """Option index named by a generated answer (see ``letter_parser``), or None."""
    return parse_letter(output, item.choices)


def score(items: list[TaskItem], outputs: list[str]) -> dict[str, float]:
    """``accuracy`` of the parsed answers and ``parse_rate``, in percent."""
    check_outputs("reading", items, outputs)
    predictions = [predict(item, out) for item, out in zip(items, outputs, strict=True)]
    return parsed_accuracy("reading", items, predictions)


def score_loglik(items: list[TaskItem], option_logprobs: list[list[float]]) -> dict[str, float]:
    """``accuracy`` (percent) of the highest-log-likelihood option among ``" A" .. " D"``."""
    return loglik_accuracy("reading", items, option_logprobs)
