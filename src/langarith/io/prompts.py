"""Prompt files: the forcing and calibration questions (TSV) and the fallback questions (lines)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_questions(path: str | Path) -> dict[str, list[str]]:
    """``{lang: [question 0, …, question 5]}`` from a TSV with ``lang, question_idx, question``."""
    questions: dict[str, dict[int, str]] = {}
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = {"lang", "question_idx", "question"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            questions.setdefault(row["lang"], {})[int(row["question_idx"])] = row["question"]
    return {lang: [qs[i] for i in sorted(qs)] for lang, qs in questions.items()}


def read_prompts(path: str | Path, template: str, max_prompts: int | None = None) -> list[str]:
    """The non-empty lines of ``path`` (first ``max_prompts``), formatted as ``Q: …\\nA:``."""
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").split("\n")]
    questions = [line for line in lines if line]
    if max_prompts is not None:
        questions = questions[:max_prompts]
    if not questions:
        raise ValueError(f"{path}: no fallback questions")
    return [template.format(question=q) for q in questions]
