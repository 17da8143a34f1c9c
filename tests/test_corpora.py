"""Corpus readers: the UDHR declaration parser, local text files, hub datasets (offline)."""

from __future__ import annotations

import io
import tarfile

import polars as pl
import pytest
from conftest import shared_data

from langarith.corpora import Document, hub, local, read_corpus, udhr, write_corpus

DECLARATION = """<!doctype html>
<html data-code="eng" lang="en"><head><title>English</title></head><body>
<h1>Universal Declaration of Human Rights</h1>
<header><h2>Preamble</h2>
<p>Whereas recognition of the inherent dignity &amp; rights,</p>
<p>Now, therefore,</p></header>
<article data-number="1"><h2>Article 1</h2><p>All human beings are born free.</p></article>
<article data-number="2"><h2>Article 2</h2><p>Everyone is entitled
   to all the rights.</p><ol><li>No distinction shall be made.</li></ol></article>
</body></html>"""


def test_declaration_is_split_into_preamble_and_articles():
    docs = udhr.parse_declaration(DECLARATION)
    assert [d.doc_id for d in docs] == ["preamble", "article-01", "article-02"]
    assert docs[0].text == "Whereas recognition of the inherent dignity & rights,\nNow, therefore,"
    assert docs[2].text == "Everyone is entitled to all the rights.\nNo distinction shall be made."
    assert "Article 1" not in docs[1].text  # headings are not text


def make_tarball(tmp_path, members: dict[str, str]):
    path = tmp_path / "udhr.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/declaration/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_language_codes_map_to_declarations(tmp_path):
    tarball = make_tarball(tmp_path, {"deu_1996.html": DECLARATION})
    assert len(udhr.read_language(tarball, "de")) == 3
    with pytest.raises(ValueError, match="no declaration eng.html for language 'en'"):
        udhr.read_language(tarball, "en")


def test_local_files_one_document_per_line():
    docs = local.read_language(shared_data() / "flores200_devtest", "de", "{flores}.txt")
    assert len(docs) == 1012 and docs[0].doc_id == "deu_Latn.txt:1"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\xff\xfe bad bytes\n", "not valid UTF-8")],
)
def test_local_bad_files_name_the_file(tmp_path, content, message):
    (tmp_path / "en.txt").write_bytes(content)
    with pytest.raises(ValueError, match=rf"en\.txt.*{message}"):
        local.read_language(tmp_path, "en")
    with pytest.raises(ValueError, match="fr.txt.*does not exist"):
        local.read_language(tmp_path, "fr")


def test_hub_reader_streams_a_local_dataset(tmp_path):
    rows = pl.DataFrame({"text": [f"Satz Nummer {i}." for i in range(50)], "id": list(range(50))})
    rows.write_ndjson(tmp_path / "de.jsonl")
    corpus = {
        "dataset": "json",
        "data_files": {"de": str(tmp_path / "de.jsonl")},
        "text_field": "text",
        "max_documents": 10,
    }
    docs = hub.read_language(corpus, "de")
    assert [d.text for d in docs[:2]] == ["Satz Nummer 0.", "Satz Nummer 1."]
    assert len(docs) == 10
    with pytest.raises(ValueError, match="no field 'content'"):
        hub.read_language({**corpus, "text_field": "content"}, "de")


def test_corpus_parquet_roundtrip_and_empty_corpus(tmp_path):
    write_corpus([Document("a", "eins"), Document("b", "  ")], tmp_path / "c.parquet", "x/de")
    assert read_corpus(tmp_path / "c.parquet") == ["eins"]
    with pytest.raises(ValueError, match="corpus x/de contains no text"):
        write_corpus([Document("a", "")], tmp_path / "d.parquet", "x/de")
    assert not (tmp_path / "d.parquet").exists()
