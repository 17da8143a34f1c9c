"""The instructions of the prompting baseline (resources/prompts/instructions.tsv): every pair of
the default languages, each instruction in its source language's script, and the strict reader's
errors, which name the file and the line."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
import yaml
from conftest import REPO

from langarith.core.languages import LANGUAGES
from langarith.io.prompts import read_instructions

INSTRUCTIONS = REPO / "resources" / "prompts" / "instructions.tsv"
DEFAULT_LANGUAGES = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["languages"]

# The prefix of the Unicode names of the letters (and combining marks) of each source's script.
SCRIPT_PREFIXES = {
    "Tibetan": ("TIBETAN",),
    "Japanese": ("HIRAGANA", "KATAKANA", "CJK UNIFIED IDEOGRAPH"),
    "Arabic": ("ARABIC",),
    "Han": ("CJK UNIFIED IDEOGRAPH",),
    "Cyrillic": ("CYRILLIC",),
    "Hangul": ("HANGUL",),
    "Devanagari": ("DEVANAGARI",),
    "Latin": ("LATIN",),
}
# What ends the one sentence of an instruction, per script (Latin, Cyrillic, Arabic, Hangul: ".")
SENTENCE_ENDS = {"Tibetan": "།", "Japanese": "。", "Han": "。", "Devanagari": "।"}


def _letters(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch)[0] in "LM"]


@pytest.fixture(scope="module")
def shipped():
    return read_instructions(INSTRUCTIONS)


def test_the_shipped_file_has_exactly_every_pair_of_the_default_languages(shipped):
    assert len(DEFAULT_LANGUAGES) == 21
    assert set(shipped.by_pair) == set(itertools.product(DEFAULT_LANGUAGES, repeat=2))
    assert len(shipped) == 441
    shipped.require(itertools.product(DEFAULT_LANGUAGES, repeat=2))
    assert all(text.strip() for text in shipped.by_pair.values())


@pytest.mark.parametrize("source", DEFAULT_LANGUAGES)
def test_each_instruction_is_one_sentence_in_the_source_languages_script(shipped, source):
    script = LANGUAGES[source].script
    prefixes = SCRIPT_PREFIXES[script]
    texts = [shipped[(source, target)] for target in DEFAULT_LANGUAGES]
    for text in texts:
        foreign = [ch for ch in _letters(text) if not unicodedata.name(ch, "").startswith(prefixes)]
        assert not foreign, (source, text, foreign)
        assert text.endswith(SENTENCE_ENDS.get(script, ".")), (source, text)
        assert text.count(SENTENCE_ENDS.get(script, ".")) == 1, (source, text)
    if script == "Japanese":  # kana, not only kanji (which Chinese shares)
        assert all(
            any(unicodedata.name(ch).startswith(("HIRAGANA", "KATAKANA")) for ch in text)
            for text in texts
        )
    # one frame, 21 names: no two targets share an instruction
    assert len(set(texts)) == len(texts), source


def test_english_names_each_target_and_the_diagonal_says_english(shipped):
    assert shipped[("en", "en")] == "Answer in English."
    for target in DEFAULT_LANGUAGES:
        assert shipped[("en", target)] == f"Answer in {LANGUAGES[target].name}."


def test_a_few_instructions_as_written():
    shipped = read_instructions(INSTRUCTIONS)
    assert shipped[("de", "fr")] == "Antworte auf Französisch."
    assert shipped[("zh", "ja")] == "请用日语回答。"
    assert shipped[("zh", "zh")] == "请用中文回答。"
    assert shipped[("ru", "de")] == "Ответь на немецком языке."
    assert shipped[("no", "no")] == "Svar på norsk."


def _write(tmp_path, text: str):
    path = tmp_path / "instructions.tsv"
    path.write_text(text, encoding="utf-8")
    return path


HEADER = "source\ttarget\tinstruction\n"


def test_the_reader_reads_a_small_file_with_columns_in_any_order(tmp_path):
    path = _write(tmp_path, "instruction\tsource\ttarget\nAnswer in German.\ten\tde\n\n")
    instructions = read_instructions(path)
    assert dict(instructions.by_pair) == {("en", "de"): "Answer in German."}
    assert instructions.path == path
    with pytest.raises(TypeError):
        instructions.by_pair[("en", "fr")] = "Answer in French."  # read-only


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("source\ttarget\n", 1, "missing column(s) instruction (header: source, target)"),
        ("", 1, "empty file (no header source, target, instruction)"),
        (HEADER + "en\tde\tAnswer in German.\nen\tfr\t  \n", 3, "empty instruction for en->fr"),
        (
            HEADER + "en\tde\tAnswer in German.\nen\tde\tReply in German.\n",
            3,
            "duplicate pair en->de (first on line 2)",
        ),
        (HEADER + "en\tde\n", 2, "2 tab-separated field(s), the header has 3"),
        (HEADER + "\tde\tAnswer in German.\n", 2, "empty source"),
        ("source\ttarget\tinstruction\tinstruction\n", 1, "repeated column(s) instruction"),
    ],
    ids=[
        "missing-column",
        "empty-file",
        "empty-instruction",
        "duplicate",
        "short-row",
        "empty-source",
        "repeated-column",
    ],
)
def test_the_reader_names_the_file_and_line_of_a_malformed_file(tmp_path, text, where, what):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        read_instructions(path)
    assert str(err.value) == f"{path}:{where}: {what}"


def test_a_file_with_no_rows_or_not_utf8_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=f"^{tmp_path / 'instructions.tsv'}: no instructions$"):
        read_instructions(_write(tmp_path, HEADER))
    path = tmp_path / "latin1.tsv"
    path.write_bytes(HEADER.encode() + "en\tde\tAntworte auf Französisch.\n".encode("latin-1"))
    with pytest.raises(ValueError, match=f"^{path}: not UTF-8 text"):
        read_instructions(path)


def test_require_names_every_missing_pair_and_the_file(tmp_path):
    path = _write(tmp_path, HEADER + "en\tde\tAnswer in German.\nde\ten\tAntworte auf Englisch.\n")
    instructions = read_instructions(path)
    instructions.require([("en", "de"), ("de", "en")])
    pairs = list(itertools.product(["en", "de", "fr"], ["de", "en"]))
    assert instructions.missing(pairs) == [("en", "en"), ("de", "de"), ("fr", "de"), ("fr", "en")]
    with pytest.raises(ValueError) as err:
        instructions.require(pairs + [("fr", "en")])
    assert str(err.value) == f"{path}: no instruction for 4 pair(s): en->en de->de fr->de fr->en"
