"""Corpora and task sets from hub datasets, through the project's real loading code
(``corpora.hub`` streams with ``datasets``, ``tasks.sources`` loads per language) against the
local hub, with the paper's sources (config/paper.yaml), and a one-line error for each way the
hub can refuse."""

from __future__ import annotations

import json

import pytest

from localhub import repos
from localhub.server import OTHER_TOKEN

CULTURAX = {
    "name": "culturax",
    "kind": "hub",
    "dataset": "uonlp/CulturaX",
    "split": "train",
    "text_field": "text",
    "revision": None,
    "max_chars": 600,
}
# the task sources of config/paper.yaml
PAPER_SOURCES = {
    "translation": {
        "kind": "hub",
        "path": "openlanguagedata/flores_plus",
        "config": "{flores_plus}",
        "split": "devtest",
    },
    "qa": {"kind": "hub", "path": "google/xquad", "config": "xquad.{lang}", "split": "validation"},
    "reading": {"kind": "hub", "path": "facebook/belebele", "config": "{flores}", "split": "test"},
    "nli": {"kind": "hub", "path": "facebook/xnli", "config": "{lang}", "split": "test"},
}


def read_corpus(corpus: dict, lang: str):
    from langarith.io.corpora.read import read_language

    return read_language(corpus, lang, {})


def test_paper_yaml_uses_these_sources():
    import yaml

    paper = yaml.safe_load((repos.repo_text.REPO / "config" / "paper.yaml").read_text())
    assert {k: paper["corpus"][k] for k in ("kind", "dataset", "split", "text_field")} == {
        k: CULTURAX[k] for k in ("kind", "dataset", "split", "text_field")
    }
    for task, source in PAPER_SOURCES.items():
        assert paper["tasks"][task]["source"] == source


def test_culturax_streams_up_to_the_budget(hub):
    hub.login()
    fetched = read_corpus(CULTURAX, "de")
    expected = repos.repo_text.lines("de", 40)
    texts = [d.text for d in fetched.documents]
    assert texts == expected[: len(texts)] and len(texts) < 40
    assert sum(map(len, texts)) >= 600 and fetched.cut_by == "corpus.max_chars=600"
    # streamed: only the one language's file was read, nothing of the others
    assert {p for p in hub.hub.downloads("uonlp/CulturaX") if p.endswith(".parquet")} == {
        "de/de_part_00000.parquet"
    }


def test_culturax_at_a_revision(hub):
    hub.login()
    repo = hub.hub.repos[("dataset", "uonlp/CulturaX")]
    fetched = read_corpus({**CULTURAX, "revision": repo.refs["main"]}, "fr")
    assert fetched.documents[0].text == repos.repo_text.lines("fr", 1)[0]


def corpus_error(hub, corpus: dict, lang: str = "de") -> str:
    with pytest.raises(ValueError) as err:
        read_corpus(corpus, lang)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_gated_corpus_without_a_token(hub):
    message = corpus_error(hub, CULTURAX)
    assert "dataset 'uonlp/CulturaX' (corpus) is gated: accept its terms at" in message
    assert "/datasets/uonlp/CulturaX" in message and "hf auth login" in message
    assert "HF_TOKEN" in message and "(language 'de')" in message


def test_gated_corpus_with_a_token_without_access(hub):
    hub.login(OTHER_TOKEN)
    message = corpus_error(hub, CULTURAX)
    assert "is gated and the token in use has no access to it" in message


def test_missing_corpus_dataset(hub):
    message = corpus_error(hub, {**CULTURAX, "dataset": "nobody/no-such-corpus"})
    assert "dataset 'nobody/no-such-corpus' (corpus) is not on the hub" in message


def test_missing_corpus_revision(hub):
    hub.login()
    message = corpus_error(hub, {**CULTURAX, "revision": "v9"})
    assert "dataset 'uonlp/CulturaX' (corpus) has no revision 'v9'" in message


def test_missing_corpus_config(hub):
    hub.login()
    message = corpus_error(hub, {**CULTURAX, "configs": {"de": "deu"}})
    assert "has no config 'deu'" in message and "'de'" in message


def test_offline_corpus_with_nothing_cached(hub):
    hub.offline()
    message = corpus_error(hub, CULTURAX)
    assert "'uonlp/CulturaX'" in message and "HF_HUB_OFFLINE" in message
    assert hub.hub.requests == []


@pytest.mark.parametrize(
    ("task", "lang", "n_items"),
    [("translation", "zh", 8), ("translation", "en", 8), ("qa", "de", 6), ("reading", "de", 8)]
    + [("nli", "es", 12)],
)
def test_paper_task_sources_load_from_the_hub(hub, task, lang, n_items):
    import importlib

    hub.login()  # FLORES+ is gated
    module = importlib.import_module(f"langarith.experiments.tasks.{task}")
    source = {**PAPER_SOURCES[task], "cache_dir": str(hub.home / "datasets")}
    items = module.load_items(source, lang)
    builtin = module.load_items({"kind": "builtin"}, lang)
    assert len(items) == n_items
    if task != "translation":  # the hub's rows are the built-in sets in the hub's schema
        assert [i.prompt for i in items] == [i.prompt for i in builtin]
        assert [i.references for i in items] == [i.references for i in builtin]
    else:  # FLORES+ devtest: the built-in sentences after the 4 of dev
        assert [i.references for i in items] == [i.references for i in builtin[4:]]


def task_error(task: str, lang: str, **changes) -> str:
    import importlib

    module = importlib.import_module(f"langarith.experiments.tasks.{task}")
    with pytest.raises(ValueError) as err:
        module.load_items({**PAPER_SOURCES[task], **changes}, lang)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def test_gated_task_dataset_without_a_token(hub):
    message = task_error("translation", "de")
    assert "openlanguagedata/flores_plus" in message and "is gated: accept its terms" in message
    assert "hf auth login" in message


def test_task_dataset_without_the_languages_config(hub):
    message = task_error("qa", "fr")
    assert "google/xquad" in message and "has no config 'xquad.fr'" in message
    assert "xquad.de" in message  # the configs it has


def test_task_dataset_at_a_missing_revision(hub):
    message = task_error("nli", "de", revision="v9")
    assert "facebook/xnli" in message and "has no revision 'v9'" in message


def test_offline_task_dataset_with_nothing_cached(hub):
    hub.offline()
    message = task_error("reading", "de")
    assert "facebook/belebele" in message and "HF_HUB_OFFLINE" in message


def test_the_hub_serves_the_real_layouts(hub):
    """The file layout and schema of the real repositories (the loaders rely on them)."""
    from huggingface_hub import HfApi

    api = HfApi()
    files = {r: set(api.list_repo_files(r, repo_type="dataset")) for r in repos.DATASETS}
    assert "de/de_part_00000.parquet" in files["uonlp/CulturaX"]
    assert {"devtest/cmn_Hans.parquet", "dev/eng_Latn.parquet"} <= files[
        "openlanguagedata/flores_plus"
    ]
    assert "xquad.en/validation-00000-of-00001.parquet" in files["google/xquad"]
    assert "data/eng_Latn.jsonl" in files["facebook/belebele"]
    assert "en/test-00000-of-00001.parquet" in files["facebook/xnli"]
    hub.login()
    path = api.hf_hub_download("facebook/belebele", "data/deu_Latn.jsonl", repo_type="dataset")
    with open(path, encoding="utf-8") as f:
        row = json.loads(f.readline())
    assert {"flores_passage", "question", "mc_answer4", "correct_answer_num"} <= set(row)
