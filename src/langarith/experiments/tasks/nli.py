"""Natural language inference on XNLI (method.md §4.6): prompt, loading, label parsing, accuracy.

Labels: 0 entailment, 1 neutral, 2 contradiction (ints, their names, or "0"-"2" in files).
Layouts: local / builtin = ``<dir>/test.<lang>.jsonl`` (``premise, hypothesis, label``), or
else an XTREME TSV ``<dir>/test-<lang>.tsv`` / ``<dir>/xtreme_unlabeled/test-<lang>.tsv``
(``premise<TAB>hypothesis[<TAB>label]``), or the file itself. Hub = ``facebook/xnli``
(``"config": "{lang}"``, split ``test``). The anchor uses the first 1,000 test items; pass
``max_items=1000`` for parity.

``source["labels_from"]`` joins labels line by line from another file of the same split,
because XNLI is parallel (line i has the same label in every language; shared data README §3):
a language code (its file in the same source, e.g. ``"en"``) or a path to a labelled jsonl/tsv.
It is how the unlabeled Russian XTREME file gets labels. When given, it replaces any labels
of the rows; both must have the same number of lines.

Scoring: ``score`` parses answers with ``nli_parser.parse_nli_label`` (anchor rules;
``strict=True`` ignores yes/no) and reports ``accuracy``, per-gold-class accuracy
(``entailment``, ``neutral``, ``contradiction``; NaN for an absent class) and ``parse_rate``,
in percent. Log-likelihood options are the label words ``" Entailment"``, ``" Neutral"``,
``" Contradiction"`` (the prompt lists them by name; digits would mostly measure a
position bias).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langarith.core.languages import LANGUAGES
from langarith.experiments.tasks.base import (
    EXTRA_LANGUAGE_NAMES,
    TaskItem,
    TaskSpec,
    check_outputs,
    first_n,
    language_name,
)
from langarith.experiments.tasks.choice_scoring import loglik_accuracy, parsed_accuracy
from langarith.experiments.tasks.nli_parser import LABELS, parse_nli_label
from langarith.experiments.tasks.readers import read_jsonl, read_tsv, require_file, require_text
from langarith.experiments.tasks.sources import check_source, describe_hub, load_hub_rows, local_dir

SPEC = TaskSpec(
    name="nli",
    max_new_tokens=32,
    stop_strings=("\n\n", "Premise:", "Hypothesis:", "Answer:", "The relationship"),
)
CHOICES: tuple[str, ...] = tuple(label.capitalize() for label in LABELS)
OPTIONS: tuple[str, ...] = tuple(f" {choice}" for choice in CHOICES)
DEFAULT_SPLIT = "test"
EXTRA_KEYS = ("labels_from",)


def make_prompt(premise: str, hypothesis: str, lang: str) -> str:
    """The anchor's XNLI prompt (blank lines between blocks)."""
    return (
        f"Given the following {language_name(lang)} premise and hypothesis, "
        "determine the relationship between them.\n\n"
        f"Premise: {premise}\n\n"
        f"Hypothesis: {hypothesis}\n\n"
        "Options:\n1. Entailment\n2. Neutral\n3. Contradiction\n\n"
        "Answer:"
    )


def parse_label_value(value: Any, where: str) -> int | None:
    """A gold label as 0/1/2 from an int, a digit string or a label name; None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        value = LABELS.index(text) if text in LABELS else text
        if isinstance(value, str) and value in ("0", "1", "2"):
            value = int(value)
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"{where}: field 'label' is {value!r}, expected 0, 1, 2 or a label name")
    return int(value)


def _read_file(path: Path, lang: str) -> list[dict[str, Any]]:
    """Rows of a jsonl or XTREME tsv file, as dicts with premise, hypothesis, label."""
    if path.suffix == ".tsv":
        rows = []
        for number, fields in enumerate(read_tsv(path, lang), start=1):
            if len(fields) < 2:
                raise ValueError(f"{path}:{number}: expected premise<TAB>hypothesis[<TAB>label]")
            label = fields[2] if len(fields) > 2 else None
            rows.append({"premise": fields[0], "hypothesis": fields[1], "label": label})
        return rows
    return read_jsonl(path, lang)


def _local_file(directory: Path, lang: str) -> Path:
    if directory.is_file():
        return directory
    candidates = (
        directory / f"test.{lang}.jsonl",
        directory / f"test-{lang}.tsv",
        directory / "xtreme_unlabeled" / f"test-{lang}.tsv",
    )
    found = next((path for path in candidates if path.is_file()), None)
    return found or require_file(candidates[0], lang)


def _rows(source: Mapping[str, Any], kind: str, lang: str) -> tuple[list[dict], str]:
    """The rows for ``lang`` and a name of where they come from."""
    if kind == "hub":
        return load_hub_rows(source, lang, DEFAULT_SPLIT), describe_hub(source, lang)
    path = _local_file(local_dir(source, "nli"), lang)
    return _read_file(path, lang), str(path)


def _joined_labels(source: Mapping[str, Any], kind: str, count: int) -> list[int | None]:
    """Labels of the ``labels_from`` file/language, one per line; must have ``count`` lines."""
    ref = str(source["labels_from"])
    if ref in LANGUAGES or ref in EXTRA_LANGUAGE_NAMES:
        if kind != "hub" and local_dir(source, "nli").is_file():
            raise ValueError(f"{source['path']}: labels_from {ref!r} needs a directory, not a file")
        rows, where = _rows(source, kind, ref)
    else:
        if not Path(ref).is_file():
            raise ValueError(f"{ref}: labels_from file not found")
        rows, where = _read_file(Path(ref), "labels_from"), ref
    if len(rows) != count:
        raise ValueError(f"{where}: labels_from has {len(rows)} lines, the data has {count}")
    return [parse_label_value(row.get("label"), f"{where}:{n}") for n, row in enumerate(rows, 1)]


def load_items(source: dict, lang: str, max_items: int | None = None) -> list[TaskItem]:
    """XNLI items for ``lang``, first ``max_items`` in file order (ids = 0-based line index)."""
    kind = check_source(source, "nli", EXTRA_KEYS)
    language_name(lang)
    rows, where = _rows(source, kind, lang)
    if not rows:
        raise ValueError(f"{where}: no rows for language {lang!r}")
    if source.get("labels_from"):
        labels = _joined_labels(source, kind, len(rows))
    else:
        labels = [parse_label_value(r.get("label"), f"{where}:{n}") for n, r in enumerate(rows, 1)]
    items = []
    for number, (row, label) in enumerate(
        zip(first_n(rows, max_items, "nli"), labels, strict=False), start=1
    ):
        here = f"{where}:{number}"
        if label is None:
            raise ValueError(
                f"{here}: missing field 'label' (language {lang!r}); set labels_from, e.g. 'en'"
            )
        premise, hypothesis = (
            require_text(row, "premise", here),
            require_text(row, "hypothesis", here),
        )
        items.append(
            TaskItem(
                item_id=f"{number - 1:04d}",
                lang=lang,
                prompt=make_prompt(premise, hypothesis, lang),
                references=(CHOICES[label],),
                options=OPTIONS,
                gold_index=label,
                choices=CHOICES,
            )
        )
    return items


def predict(item: TaskItem, output: str, strict: bool = False) -> int | None:
    """Label index named by a generated answer (see ``nli_parser``), or None."""
    return parse_nli_label(output, strict)


def score(items: list[TaskItem], outputs: list[str], strict: bool = False) -> dict[str, float]:
    """``accuracy``, per-class accuracy and ``parse_rate`` of the parsed answers, in percent."""
    check_outputs("nli", items, outputs)
    predictions = [predict(item, out, strict) for item, out in zip(items, outputs, strict=True)]
    scores = parsed_accuracy("nli", items, predictions)
    for label, name in enumerate(LABELS):
        hits = [
            p == label for it, p in zip(items, predictions, strict=True) if it.gold_index == label
        ]
        scores[name] = 100.0 * sum(hits) / len(hits) if hits else float("nan")
    return scores


def score_loglik(items: list[TaskItem], option_logprobs: list[list[float]]) -> dict[str, float]:
    """``accuracy`` (percent) of the highest-log-likelihood label word."""
    return loglik_accuracy("nli", items, option_logprobs)
