"""Text in the repository itself, per language: what the test tokenizers are trained on and the
corpora of the test workflows are made of, so that a clone without ``../shared`` runs them.

Sources (all written for this project; src/langarith/experiments/tasks/builtin/README.md): the
forcing and calibration prompts (all 21 languages, 12 questions each) and the built-in task sets
(translation: en de fr es zh ru; nli: en de es fr; qa: en de es; reading: en de).
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
from pathlib import Path

from langarith.core.languages import LANGUAGES, language
from langarith.experiments.tasks.sources import BUILTIN_ROOT

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"
TASK_SETS = BUILTIN_ROOT  # the built-in task sets, package data


def _prompts(lang: str) -> list[str]:
    out = []
    for name in ("forcing.tsv", "calibration.tsv"):
        with (RESOURCES / "prompts" / name).open(encoding="utf-8", newline="") as f:
            rows = csv.DictReader(f, delimiter="\t")
            out += [row["question"] for row in rows if row["lang"] == lang]
    return out


def _tasks(lang: str) -> list[str]:
    tasks = TASK_SETS
    flores = language(lang).flores
    out: list[str] = []
    translation = tasks / "translation" / f"{flores}.txt"
    if translation.is_file():
        out += translation.read_text(encoding="utf-8").splitlines()
    nli = tasks / "nli" / f"test.{lang}.jsonl"
    if nli.is_file():
        for line in nli.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out += [row["premise"], row["hypothesis"]]
    qa = tasks / "qa" / f"xquad.{lang}.json"
    if qa.is_file():
        for article in json.loads(qa.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                out.append(paragraph["context"])
                out += [q["question"] for q in paragraph["qas"]]
    reading = tasks / "reading" / f"{flores}.jsonl"
    if reading.is_file():
        for line in reading.read_text(encoding="utf-8").splitlines():
            passage = json.loads(line)
            out.append(passage["text"])
            for item in passage["items"]:
                out.append(item["question"])
                out += [a["text"] for a in item["answers"]]
    return out


@functools.cache
def sentences(lang: str) -> tuple[str, ...]:
    """Every distinct line of text of ``lang`` (ISO 639-1) in the repository, in a fixed order."""
    lines = [line.strip() for line in _prompts(lang) + _tasks(lang)]
    unique = tuple(dict.fromkeys(line for line in lines if line))
    if not unique:
        raise ValueError(f"the repository has no text in language {lang!r}")
    return unique


def lines(lang: str, n: int) -> list[str]:
    """``n`` lines of ``lang``: its sentences in order, repeated from the start when used up."""
    return list(itertools.islice(itertools.cycle(sentences(lang)), n))


def write_corpus(directory: Path, langs=None, n_lines: int = 200) -> Path:
    """A local corpus (``{flores}.txt``, one document per line, ``n_lines`` each) of ``langs``
    (default: all 21) in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for lang in langs or list(LANGUAGES):
        path = directory / f"{language(lang).flores}.txt"
        path.write_text("\n".join(lines(lang, n_lines)) + "\n", encoding="utf-8")
    return directory
