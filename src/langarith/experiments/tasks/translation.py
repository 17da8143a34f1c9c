"""FLORES-200 translation (method.md §4.3): English -> X (anchor) or X -> English.

``source["direction"]`` is ``"en-x"`` (default, the anchor's) or ``"x-en"``; ``lang`` is
always the non-English side X. English -> English is allowed (the anchor silently skips it
because no such pair config exists; here it is a copy task that fills the diagonal cell).

Prompt: ``Translate this English sentence into {TargetName}: {source}. Translation:``.
The anchor always appends ``.`` after the source, which doubles the final stop of nearly
every FLORES sentence ("...early days.. Translation:"). Choice: the period is added only when
the source does not already end with a punctuation mark (any Unicode category P*: ``.`` ``?``
``!`` ``"`` ``)`` ``。`` ...); ``source["anchor_prompt"] = True`` restores the anchor's
always-period prompt for exact parity.

Layouts: local / builtin = a directory of line-aligned ``<flores_code>.txt`` files (line i is
the same sentence in every file). Hub = one dataset per language with a ``text`` (or
``sentence``) field: ``openlanguagedata/flores_plus`` with ``"config": "{flores_plus}"`` (rows
``id, iso_639_3, iso_15924, glottocode, text, url, domain, topic, has_image, has_hyperlink,
last_updated``), or ``"path": "text"`` over local files. Rows that carry ``iso_639_3`` and
``iso_15924`` are kept only where those name the language loaded (so FLORES+'s all-language
``default`` config works too, and a config of the wrong language is an error), and rows with
an ``id`` are paired with the English rows by ``id`` (both sides must hold the same ids);
other rows are paired by position. Rows with ``sentence_<flores_code>`` fields (the old
``facebook/flores`` pair configs ``eng_Latn-{flores}``) are read too, both sides from the same
row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langarith.experiments.tasks.base import (
    TaskItem,
    TaskSpec,
    check_outputs,
    first_n,
    flores_code,
    flores_plus_code,
    language_name,
)
from langarith.experiments.tasks.mt_metrics import corpus_metrics, sentence_metrics
from langarith.experiments.tasks.readers import read_lines
from langarith.experiments.tasks.sources import check_source, describe_hub, load_hub_rows, local_dir

SPEC = TaskSpec(
    name="translation",
    max_new_tokens=128,
    stop_strings=("\n\n", "Translation", "Translate", "Source:", "Target:"),
)
DIRECTIONS = ("en-x", "x-en")
EXTRA_KEYS = ("direction", "anchor_prompt")
DEFAULT_SPLIT = "devtest"


def ends_with_punctuation(text: str) -> bool:
    """True if the last non-space character of ``text`` is a Unicode punctuation mark."""
    stripped = text.rstrip()
    return bool(stripped) and unicodedata.category(stripped[-1]).startswith("P")


def make_prompt(sentence: str, source_name: str, target_name: str, anchor: bool = False) -> str:
    """The translation prompt; the period after ``sentence`` only if it lacks final
    punctuation (or always, with ``anchor=True``)."""
    period = "." if anchor or not ends_with_punctuation(sentence) else ""
    return (
        f"Translate this {source_name} sentence into {target_name}: {sentence}{period} Translation:"
    )


def _local_sentences(directory: Path, lang: str) -> tuple[list[str], Path]:
    if not directory.is_dir():
        raise ValueError(f"{directory}: translation source must be a directory of <flores>.txt")
    path = directory / f"{flores_code(lang)}.txt"
    lines = read_lines(path, lang)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise ValueError(f"{path}:{number}: empty sentence (language {lang!r})")
    return lines, path


def _hub_field(row: Mapping[str, Any], lang: str, where: str) -> str:
    for field in (f"sentence_{flores_code(lang)}", "text", "sentence"):
        value = row.get(field)
        if isinstance(value, str) and value.strip():
            return value
    raise ValueError(f"{where}: row without field 'text' or 'sentence_{flores_code(lang)}'")


def _language_rows(rows: list[dict], lang: str, where: str) -> list[dict]:
    """The rows of ``lang`` (by FLORES+ ``iso_639_3``/``iso_15924``, if the rows have them),
    sorted by ``id`` if they have one."""
    if rows and "iso_639_3" in rows[0] and "iso_15924" in rows[0]:
        code = flores_plus_code(lang)
        labels = [f"{row['iso_639_3']}_{row['iso_15924']}" for row in rows]
        kept = [row for row, label in zip(rows, labels) if label == code]
        if not kept:
            found = ", ".join(sorted(set(labels))[:5])
            raise ValueError(f"{where}: no rows of {code} (language {lang!r}); rows are {found}")
        rows = kept
    if rows and "id" in rows[0]:
        rows = sorted(rows, key=lambda row: row["id"])
    return rows


def _check_ids(english: list[dict], other: list[dict], lang: str, where: str) -> None:
    """Rows with ids must hold the same ids on both sides (FLORES+ pairs sentences by id)."""
    if not english or not other or "id" not in english[0] or "id" not in other[0]:
        return
    ids_en, ids_x = [row["id"] for row in english], [row["id"] for row in other]
    if ids_en != ids_x:
        missing = sorted(set(ids_en) ^ set(ids_x))[:5]
        raise ValueError(
            f"{where}: the ids of {lang!r} and 'en' differ (e.g. {missing}); "
            "the sentences cannot be paired"
        )


def _hub_sentences(source: Mapping[str, Any], lang: str) -> tuple[list[str], list[str]]:
    """(English, X) sentences from hub rows (both from the same rows if they have both)."""
    where = describe_hub(source, lang)
    rows = _language_rows(load_hub_rows(source, lang, DEFAULT_SPLIT), lang, where)
    english_field = f"sentence_{flores_code('en')}"
    if rows and english_field in rows[0]:
        english = [_hub_field(r, "en", where) for r in rows]
    else:
        where_en = describe_hub(source, "en")
        english_rows = rows
        if lang != "en":
            loaded = load_hub_rows(source, "en", DEFAULT_SPLIT)
            english_rows = _language_rows(loaded, "en", where_en)
        _check_ids(english_rows, rows, lang, where)
        english = [_hub_field(r, "en", where_en) for r in english_rows]
    other = [_hub_field(r, lang, where) for r in rows]
    if len(english) != len(other):
        raise ValueError(
            f"{where}: {len(other)} sentences for {lang!r} but {len(english)} for 'en'"
        )
    return english, other


def _sentences(source: Mapping[str, Any], kind: str, lang: str) -> tuple[list[str], list[str]]:
    if kind == "hub":
        return _hub_sentences(source, lang)
    directory = local_dir(source, "translation")
    english, en_path = _local_sentences(directory, "en")
    other, path = _local_sentences(directory, lang)
    if len(english) != len(other):
        raise ValueError(
            f"{path}: {len(other)} lines but {en_path} has {len(english)} (not aligned)"
        )
    return english, other


def load_items(source: dict, lang: str, max_items: int | None = None) -> list[TaskItem]:
    """Translation items for language ``lang`` (first ``max_items`` lines in file order)."""
    kind = check_source(source, "translation", EXTRA_KEYS)
    direction = source.get("direction", "en-x")
    if direction not in DIRECTIONS:
        raise ValueError(
            f"translation source: field 'direction' is {direction!r}, not {DIRECTIONS}"
        )
    name = language_name(lang)
    english, other = _sentences(source, kind, lang)
    if not english:
        raise ValueError(f"translation: no sentences found for language {lang!r}")
    if direction == "en-x":
        src_lang, tgt_lang, src, tgt = "en", lang, english, other
    else:
        src_lang, tgt_lang, src, tgt = lang, "en", other, english
    src_name, tgt_name = ("English", name) if direction == "en-x" else (name, "English")
    pair = f"{flores_code(src_lang)}-{flores_code(tgt_lang)}"
    anchor = bool(source.get("anchor_prompt", False))
    count = len(first_n(src, max_items, "translation"))
    return [
        TaskItem(
            item_id=f"{pair}:{i:04d}",
            lang=lang,
            prompt=make_prompt(src[i], src_name, tgt_name, anchor),
            references=(tgt[i],),
            target_lang=tgt_lang,
        )
        for i in range(count)
    ]


def score_item(item: TaskItem, output: str) -> dict[str, float]:
    """Sentence-level ``bleu``, ``chrf++`` (0-100) and ``anchor_sentence_bleu`` (0-1)."""
    return sentence_metrics(output, item.references[0], item.reference_lang)


def score(
    items: list[TaskItem], outputs: list[str], spbleu: bool | None = None
) -> dict[str, float]:
    """Corpus ``bleu``, ``chrf++``, ``anchor_sentence_bleu`` and, if available offline (or
    ``spbleu=True``), ``spbleu``; all items must have references in one language."""
    check_outputs("translation", items, outputs)
    langs = sorted({item.reference_lang for item in items})
    if len(langs) != 1:
        raise ValueError(f"translation: items have references in several languages {langs}")
    refs = [item.references[0] for item in items]
    return corpus_metrics(outputs, refs, langs[0], spbleu)
