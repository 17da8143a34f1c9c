"""Prompt files: the forcing and calibration questions (TSV), the fallback questions (lines) and
the instructions of the prompting baseline (TSV, one per source and target language)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType


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


INSTRUCTION_COLUMNS = ("source", "target", "instruction")


@dataclass(frozen=True)
class Instructions:
    """The instructions of ``path``: ``by_pair[(source, target)]`` is the instruction, written in
    the source language, to answer in the target language."""

    path: Path
    by_pair: Mapping[tuple[str, str], str]

    def __getitem__(self, pair: tuple[str, str]) -> str:
        return self.by_pair[pair]

    def __len__(self) -> int:
        return len(self.by_pair)

    def missing(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The pairs of ``pairs`` without an instruction, in their order, each once."""
        return [pair for pair in dict.fromkeys(pairs) if pair not in self.by_pair]

    def require(self, pairs: Iterable[tuple[str, str]]) -> None:
        """A ``ValueError`` naming the file and every pair of ``pairs`` it has no instruction
        for (check a run's pairs with it before any job starts)."""
        missing = self.missing(pairs)
        if missing:
            names = " ".join(f"{source}->{target}" for source, target in missing)
            raise ValueError(f"{self.path}: no instruction for {len(missing)} pair(s): {names}")


def read_instructions(path: str | Path) -> Instructions:
    """The instructions of a TSV with columns ``source, target, instruction`` (any order, more
    columns allowed), one row per (source, target) pair. Strict: a missing column, a row with
    the wrong number of fields, an empty field or a repeated pair is a ``ValueError`` that
    names ``<file>:<line>``. Fields are taken literally (no quoting), blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    lines = text.removeprefix("\ufeff").split("\n")
    if not text.strip():
        raise ValueError(f"{path}:1: empty file (no header {', '.join(INSTRUCTION_COLUMNS)})")
    header = [name.strip() for name in lines[0].rstrip("\r").split("\t")]
    missing = [name for name in INSTRUCTION_COLUMNS if name not in header]
    if missing:
        found = ", ".join(header)
        raise ValueError(f"{path}:1: missing column(s) {', '.join(missing)} (header: {found})")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}:1: repeated column(s) {', '.join(repeated)}")
    index = {name: header.index(name) for name in INSTRUCTION_COLUMNS}
    by_pair: dict[tuple[str, str], str] = {}
    first_line: dict[tuple[str, str], int] = {}
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != len(header):
            raise ValueError(
                f"{path}:{number}: {len(fields)} tab-separated field(s), the header has"
                f" {len(header)}"
            )
        source, target, instruction = (fields[index[name]] for name in INSTRUCTION_COLUMNS)
        for name, value in (("source", source), ("target", target)):
            if not value:
                raise ValueError(f"{path}:{number}: empty {name}")
        pair = (source, target)
        if not instruction:
            raise ValueError(f"{path}:{number}: empty instruction for {source}->{target}")
        if pair in first_line:
            raise ValueError(
                f"{path}:{number}: duplicate pair {source}->{target} (first on line"
                f" {first_line[pair]})"
            )
        first_line[pair] = number
        by_pair[pair] = instruction
    if not by_pair:
        raise ValueError(f"{path}: no instructions")
    return Instructions(path, MappingProxyType(by_pair))
