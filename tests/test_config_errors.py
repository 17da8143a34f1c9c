"""A bad configuration fails before any job runs, with one line naming the key or the file.

The table runs the checks of ``workflow/rules/common.smk`` in-process (config files, names,
JSON schema, ``check_config``); a few cases go through a real ``snakemake --dry-run`` to show
the line reaches the user as it is, without a traceback. Corpus text that is empty or not UTF-8
fails at the first line of its ``fetch_corpus`` job, naming the file. Task files without an
expected field fail in the task loader, naming the field.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import REPO, repo_corpus, repo_lines

from langarith.config import ConfigError, check_everything
from langarith.tasks import get_task

SCHEMAS = REPO / "workflow" / "schemas"
SECTIONS = {name: SCHEMAS / f"{name}.schema.yaml" for name in ("tasks", "fallback", "analysis")}
SECTIONS["quality"] = SCHEMAS / "quality.schema.yaml"


def fake_model(
    directory: Path, model_type: str | None = "llama", weights: str = "model.safetensors"
):
    """A directory that passes for a local model at config time (config.json + a weights file)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 32}
    if model_type is not None:
        config["model_type"] = model_type
    (directory / "config.json").write_text(json.dumps(config))
    (directory / weights).write_bytes(b"")
    return directory


@pytest.fixture
def base(tmp_path) -> dict:
    """The tiny test config (.test/) with a fake local model and the repository's text as corpus."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["corpus"]["path"] = str(repo_corpus())
    config["models"]["tiny"]["source"]["path"] = str(fake_model(tmp_path / "model"))
    return config


def check(config: dict, configfiles=()) -> None:
    check_everything(config, SCHEMAS / "config.schema.yaml", SECTIONS, configfiles)


def test_the_base_config_passes(base):
    check(base)


def test_as_many_shards_as_the_budget_allows_pass(base):
    base["recording"].update(shards=8)  # 2000 tokens in runs of 4 x 64 tokens
    check(base)


def test_placement_options_pass(base):
    base["models"]["tiny"].update(
        device_map={"model": 0, "lm_head": "cuda:1", "model.layers.1": "disk"},
        max_memory={0: "70GiB", "cuda:1": 10**9, "cpu": "200GB"},
        offload_folder="resources/offload",
    )
    check(base)
    base["models"]["tiny"].update(device_map="auto", max_memory=None, offload_folder=None)
    check(base)


def rename(section: str, old: str, new: str) -> Callable[[dict, Path], None]:
    def edit(c: dict, _tmp: Path) -> None:
        c[section][new] = c[section].pop(old)

    return edit


def model_type(value: str | None, weights: str = "model.safetensors"):
    def edit(c: dict, tmp: Path) -> None:
        path = fake_model(tmp / "other-model", value, weights)
        c["models"]["tiny"]["source"]["path"] = str(path)

    return edit


def corpus_dir(files: dict[str, bytes]):
    """A local corpus directory holding only ``files``."""

    def edit(c: dict, tmp: Path) -> None:
        directory = tmp / "corpus"
        directory.mkdir()
        for name, data in files.items():
            (directory / name).write_bytes(data)
        c["corpus"].update(path=str(directory), pattern="{lang}.txt")

    return edit


def step(**raw):
    return lambda c, _tmp: c["conditions"].update(bad=[raw])


ALL_LANGS = {f"{code}.txt": b"some text\n" for code in ("en", "de", "fr", "zh", "es")}

# (id, edit(config, tmp_path), expected part of the one-line message)
CASES = [
    (
        "unknown-language",
        lambda c, _: c.update(languages=["en", "xx"]),
        "languages: unknown language code 'xx'",
    ),
    (
        "language-code-shape",
        lambda c, _: c.update(languages=["en", "EN"]),
        "languages[1]: 'EN' does not match",
    ),
    (
        "duplicate-language",
        lambda c, _: c.update(languages=["en", "en"]),
        "languages: ['en', 'en'] has non-unique elements",
    ),
    (
        "language-missing-from-corpus",
        corpus_dir({"en.txt": b"x\n", "de.txt": b"x\n"}),
        "corpus.path: no corpus file for language 'fr'",
    ),
    ("empty-corpus-file", corpus_dir({**ALL_LANGS, "fr.txt": b""}), "fr.txt' of 'fr' is empty"),
    (
        "corpus-dir-missing",
        lambda c, _: c["corpus"].update(path="/no/such/dir"),
        "corpus.path: '/no/such/dir' is not a directory",
    ),
    (
        "corpus-pattern",
        lambda c, _: c["corpus"].update(pattern="{code}.txt"),
        "corpus.pattern: '{code}.txt'",
    ),
    (
        "hub-corpus-without-budget",
        lambda c, _: c.update(
            corpus={"name": "cx", "kind": "hub", "dataset": "uonlp/CulturaX", "text_field": "text"}
        ),
        "corpus.max_chars: required for a hub corpus (or corpus.max_documents)",
    ),
    (
        "corpus-kind",
        lambda c, _: c["corpus"].update(kind="ftp"),
        "corpus.kind: 'ftp' is not one of",
    ),
    (
        "model-source-kind",
        lambda c, _: c["models"]["tiny"]["source"].update(kind="s3"),
        "models.tiny.source.kind: 's3' is not one of ['gguf_package', 'gguf_file', 'hub', 'local']",
    ),
    (
        "unsupported-architecture",
        model_type("not-a-model"),
        "models.tiny: model type 'not-a-model'",
    ),
    ("mlp-without-neuron-site", model_type("bert"), "model type 'bert' ("),
    ("config-json-without-model-type", model_type(None), "config.json names no model_type"),
    (
        "pickle-weights-only",
        model_type("llama", "pytorch_model.bin"),
        "has no *.safetensors weights",
    ),
    (
        "missing-local-model",
        lambda c, _: c["models"]["tiny"]["source"].update(path="/no/such/model"),
        "models.tiny.source.path: '/no/such/model' does not exist",
    ),
    (
        "gguf-file-not-gguf",
        lambda c, tmp: c["models"]["tiny"].update(
            source={"kind": "gguf_file", "path": str(tmp / "model" / "config.json")}
        ),
        "models.tiny.source.path:",
    ),
    (
        "trust-remote-code-not-boolean",
        lambda c, _: c["models"]["tiny"].update(trust_remote_code="yes"),
        "models.tiny.trust_remote_code: 'yes' is not of type 'boolean'",
    ),
    (
        "device-map-strategy",
        lambda c, _: c["models"]["tiny"].update(device_map="balanced"),
        "models.tiny.device_map: 'balanced' does not match '^auto$'",
    ),
    (
        "device-map-device",
        lambda c, _: c["models"]["tiny"].update(device_map={"model.layers.0": "gpu0"}),
        "models.tiny.device_map.model.layers.0: 'gpu0' does not match",
    ),
    (
        "max-memory-size",
        lambda c, _: c["models"]["tiny"].update(device_map="auto", max_memory={"cpu": "lots"}),
        "models.tiny.max_memory.cpu: 'lots' does not match",
    ),
    (
        "max-memory-device",
        lambda c, _: c["models"]["tiny"].update(device_map="auto", max_memory={"ram": "1GiB"}),
        "models.tiny.max_memory: 'ram' does not match",
    ),
    (
        "max-memory-without-device-map",
        lambda c, _: c["models"]["tiny"].update(max_memory={0: "70GiB"}),
        "models.tiny.max_memory: only used with a device_map (device_map is null)",
    ),
    (
        "disk-without-offload-folder",
        lambda c, _: c["models"]["tiny"].update(device_map={"": "disk"}),
        "models.tiny.offload_folder: a device_map that offloads modules to 'disk' needs one",
    ),
    (
        "top-rate-above-1",
        lambda c, _: c["selections"]["lape-10"].update(top_rate=1.5),
        "selections.lape-10.top_rate: 1.5 is outside (0, 1)",
    ),
    (
        "top-rate-0",
        lambda c, _: c["selections"]["lape-10"].update(top_rate=0),
        "selections.lape-10.top_rate: 0 is outside (0, 1)",
    ),
    (
        "filter-rate-1",
        lambda c, _: c["selections"]["lape-20"].update(filter_rate=1.0),
        "selections.lape-20.filter_rate: 1.0 is outside (0, 1)",
    ),
    (
        "bar-ratio-negative",
        lambda c, _: c["selections"]["lape-20"].update(activation_bar_ratio=-0.1),
        "selections.lape-20.activation_bar_ratio: -0.1 is outside (0, 1)",
    ),
    (
        "selection-named-none",
        rename("selections", "lape-20", "none"),
        "selections.none: the name 'none' is reserved",
    ),
    (
        "model-name-traversal",
        rename("models", "tiny", "../x"),
        "models.../x: name '../x' is not allowed",
    ),
    (
        "selection-name-slash",
        rename("selections", "lape-20", "a/b"),
        "selections.a/b: name 'a/b' is not allowed",
    ),
    (
        "condition-name-traversal",
        rename("conditions", "activate", "../../etc"),
        "conditions.../../etc: name '../../etc' is not allowed",
    ),
    (
        "corpus-name-slash",
        lambda c, _: c["corpus"].update(name="a/b"),
        "corpus.name: name 'a/b' is not allowed",
    ),
    (
        "forcing-source-not-configured",
        lambda c, _: c["forcing"].update(sources=["ko"]),
        "forcing.sources: 'ko' is not one of the configured languages",
    ),
    (
        "forcing-target-not-configured",
        lambda c, _: c["forcing"].update(targets=["en", "ja"]),
        "forcing.targets: 'ja' is not one of the configured languages",
    ),
    (
        "forcing-unknown-selection",
        lambda c, _: c["forcing"].update(selections=["lape-99"]),
        "forcing.selections: 'lape-99' is not a key of selections",
    ),
    (
        "forcing-unknown-condition",
        lambda c, _: c["forcing"].update(conditions=["nope"]),
        "forcing.conditions: 'nope' is not a key of conditions",
    ),
    ("step-bad-op", step(op="mul", lang="target"), "conditions.bad[0].op: 'mul' is not one of"),
    (
        "step-bad-value",
        step(op="add", lang="target", value="median"),
        "conditions.bad[0]: op 'add' needs value 'mean' or 'prob'",
    ),
    (
        "step-set-without-number",
        step(op="set", lang="source", value="zero"),
        "conditions.bad[0]: op 'set' needs a numeric value",
    ),
    (
        "step-unknown-language",
        step(op="scale", lang="ko", strength=2.0),
        "conditions.bad[0].lang: 'ko' is not",
    ),
    (
        "step-layers-reversed",
        step(op="scale", lang="target", strength=2.0, layers=[2, 1]),
        "conditions.bad[0].layers",
    ),
    (
        "step-unknown-key",
        step(op="scale", lang="target", factor=2.0),
        "conditions.bad[0]: Additional properties are not allowed ('factor' was unexpected)",
    ),
    (
        "chunk-tokens-0",
        lambda c, _: c["recording"].update(chunk_tokens=0),
        "recording.chunk_tokens: 0 is less than the minimum of 1",
    ),
    (
        "recording-key-typo",
        lambda c, _: c["recording"].update(chunk_token=64),
        "recording: Additional properties are not allowed ('chunk_token' was unexpected)",
    ),
    (
        "shards-0",
        lambda c, _: c["recording"].update(shards=0),
        "recording.shards: 0 is less than the minimum of 1",
    ),
    (
        "shards-beyond-the-budget",  # 2000 tokens in runs of 4 x 64 tokens: 8 shards at most
        lambda c, _: c["recording"].update(shards=9),
        "recording.shards: 9 shards would leave some empty: a budget of 2000 tokens in batches "
        "of 4 chunks of 64 tokens makes at most 8 shards",
    ),
    ("missing-section", lambda c, _: c.pop("forcing"), "config: 'forcing' is a required property"),
    (
        "max-new-tokens-0",
        lambda c, _: c["forcing"]["generation"].update(max_new_tokens=0),
        "forcing.generation.max_new_tokens: 0 is less than the minimum of 1",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_is_one_line_naming_the_key(base, tmp_path, edit, expected):
    config = copy.deepcopy(base)
    edit(config, tmp_path)
    with pytest.raises(ConfigError) as info:
        check(config)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message and len(message) <= 400


def test_a_task_section_error_names_the_section_key(base):
    if "tasks" not in base or "qa" not in base["tasks"]:
        pytest.skip("the tiny config has no qa task")
    base["tasks"]["qa"]["max_items"] = 0
    with pytest.raises(
        ConfigError, match=r"^tasks\.qa\.max_items: 0 is less than the minimum of 1$"
    ):
        check(base)


def test_unsupported_architecture_messages_list_the_registry(base, tmp_path):
    model_type("bert")(base, tmp_path)
    with pytest.raises(ConfigError) as info:
        check(base)
    assert "has an MLP with no supported neuron site" in str(info.value)
    assert "llama" in str(info.value) and "gemma3" in str(info.value)


DUPLICATE = """\
conditions:
  baseline: []
  activate:
    - {op: add, lang: target, value: mean, strength: 1.0}
  activate:
    - {op: scale, lang: target, strength: 2.0}
"""


def test_duplicate_condition_names_are_found_in_the_config_file(base, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    check(base, [path])  # equal keys in different mappings (`selections`, `generation`) are fine
    text = yaml.safe_dump({k: v for k, v in base.items() if k != "conditions"}, sort_keys=False)
    path.write_text(text + DUPLICATE)
    line = len(text.splitlines()) + 5
    with pytest.raises(ConfigError) as info:
        check(base, [path])
    assert str(info.value) == (
        f"{path}:{line}: duplicate key 'activate' in conditions "
        f"(first at line {line - 2}; YAML keeps only the last one)"
    )


def test_duplicate_keys_in_a_json_config_file(base, tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"selections": {"a": {"top_rate": 0.1}, "a": {"top_rate": 0.2}}}')
    with pytest.raises(ConfigError, match=r"config\.json: duplicate key 'a'"):
        check(base, [path])


@pytest.mark.parametrize(
    ("task", "filename", "rows", "field"),
    [
        (
            "nli",
            "test.en.jsonl",
            [{"premise": "A man sleeps.", "label": 0}],
            "hypothesis",
        ),
        (
            "nli",
            "test.en.jsonl",
            [{"hypothesis": "A man sleeps.", "label": 1}],
            "premise",
        ),
    ],
)
def test_a_task_file_without_a_field_names_it(tmp_path, task, filename, rows, field):
    (tmp_path / filename).write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError) as info:
        get_task(task).load_items({"kind": "local", "path": str(tmp_path)}, "en")
    message = str(info.value)
    assert f"missing field {field!r}" in message and filename in message
    assert "\n" not in message


def test_a_qa_file_without_questions_names_the_field(tmp_path):
    article = {
        "paragraphs": [
            {
                "context": "Paris is in France.",
                "qas": [{"id": "q1", "answers": [{"text": "France"}]}],
            }
        ]
    }
    (tmp_path / "xquad.en.json").write_text(json.dumps({"data": [article]}))
    with pytest.raises(ValueError) as info:
        get_task("qa").load_items({"kind": "local", "path": str(tmp_path)}, "en")
    assert "missing field 'question'" in str(info.value) and "\n" not in str(info.value)


# --- through snakemake ----------------------------------------------------------------------


def snakemake(workdir: Path, config_text: str, *args: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.yaml"
    config_path.write_text(config_text)
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile")]
    cmd += ["-d", str(workdir), "--configfile", str(config_path), "--cores", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, expected: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    lines = [line for line in output.splitlines() if expected in line]
    assert len(lines) == 1, output
    assert "Traceback" not in output, output
    return lines[0]


DRY_RUN_CASES = [
    ("duplicate-condition", None, "duplicate key 'activate' in conditions"),
    (
        "path-in-model-name",
        lambda c: c["models"].update({"../x": c["models"].pop("tiny")}),
        "models.../x: name '../x' is not allowed",
    ),
    ("unsupported-architecture", "not-a-model", "models.tiny: model type 'not-a-model'"),
    (
        "top-rate",
        lambda c: c["selections"]["lape-10"].update(top_rate=1.5),
        "selections.lape-10.top_rate: 1.5 is outside (0, 1)",
    ),
    (
        "calibrated-target-not-calibrated",
        lambda c: (
            c["conditions"].update(
                cal=[{"op": "add", "lang": "target", "value": "mean", "strength": "calibrated"}]
            ),
            c["forcing"]["conditions"].append("cal"),
        ),
        "forcing.conditions: 'cal' needs an α for en zh es; add them to quality.calibration",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("edit", "expected"), [c[1:] for c in DRY_RUN_CASES], ids=[c[0] for c in DRY_RUN_CASES]
)
def test_bad_config_stops_a_dry_run_with_one_line(base, tmp_path, edit, expected):
    if edit is None:
        text = yaml.safe_dump({k: v for k, v in base.items() if k != "conditions"}, sort_keys=False)
        text += DUPLICATE
    else:
        if isinstance(edit, str):
            model_type(edit)(base, tmp_path)
        else:
            edit(base)
        text = yaml.safe_dump(base, sort_keys=False)
    workdir = tmp_path / "run"
    line = assert_one_line_error(snakemake(workdir, text, "--dry-run"), expected)
    assert line.startswith("langarith: config error: ")
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


@pytest.mark.slow
def test_corpus_text_that_is_empty_or_not_utf8_fails_its_job_naming_the_file(base, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for code in base["languages"]:
        (corpus / f"{code}.txt").write_text("Some text.\n", encoding="utf-8")
    (corpus / "en.txt").write_bytes(b"caf\xe9 latin-1, not UTF-8\n")
    (corpus / "de.txt").write_text("   \n\n\t\n", encoding="utf-8")
    base["corpus"].update(path=str(corpus), pattern="{lang}.txt")
    workdir = tmp_path / "run"
    targets = ["resources/corpus/flores/en.parquet", "resources/corpus/flores/de.parquet"]
    result = snakemake(workdir, yaml.safe_dump(base), *targets, "--keep-going")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    utf8 = f"corpus file {str(corpus / 'en.txt')!r} is not valid UTF-8 (invalid continuation byte)"
    empty = f"corpus file {str(corpus / 'de.txt')!r} for language 'de' is empty"
    for lang, message in (("en", utf8), ("de", empty)):
        assert f"ValueError: {message}" in output, output
        log = (workdir / f"logs/fetch_corpus/flores/{lang}.log").read_text()
        assert log.rstrip().splitlines()[-1] == f"ValueError: {message}"
        assert not (workdir / f"resources/corpus/flores/{lang}.parquet").exists()
    corpus_out = workdir / "resources/corpus/flores"
    leftovers = [p.name for p in corpus_out.iterdir()] if corpus_out.exists() else []
    assert leftovers == []  # no partial file, under the final name or a temporary one


@pytest.mark.slow
def test_a_hub_corpus_fetch_stops_at_its_budget_and_the_file_says_so(base, tmp_path):
    """``fetch_corpus`` on a hub corpus (a local ``json`` dataset): a language with more text
    than ``max_chars`` is cut at it and its file records the cut; a shorter one is kept whole
    and its log says so."""
    import polars as pl

    from langarith.corpora import corpus_cut_by

    files = {}
    for lang, n_rows in (("en", 1000), ("de", 3)):
        files[lang] = str(tmp_path / f"{lang}.jsonl")
        rows = [{"id": i, "text": f"Sentence {i:04d}."} for i in range(n_rows)]  # 14 characters
        Path(files[lang]).write_text("".join(json.dumps(row) + "\n" for row in rows))
    base["corpus"] = {
        "name": "wiki",
        "kind": "hub",
        "dataset": "json",
        "data_files": files,
        "text_field": "text",
        "max_chars": 100,
    }
    workdir = tmp_path / "run"
    targets = ["resources/corpus/wiki/en.parquet", "resources/corpus/wiki/de.parquet"]
    result = snakemake(workdir, yaml.safe_dump(base), *targets)
    assert result.returncode == 0, result.stdout + result.stderr
    en, de = (workdir / target for target in targets)
    assert pl.read_parquet(en)["doc_id"].to_list() == [str(i) for i in range(8)]  # 8 × 14 >= 100
    assert corpus_cut_by(en) == "corpus.max_chars=100"
    assert pl.read_parquet(de)["text"].to_list() == [f"Sentence {i:04d}." for i in range(3)]
    assert corpus_cut_by(de) is None
    en_log = (workdir / "logs/fetch_corpus/wiki/en.log").read_text()
    assert "en: 8 documents, 112 characters (stopped at corpus.max_chars=100)" in en_log
    de_log = (workdir / "logs/fetch_corpus/wiki/de.log").read_text()
    assert "less text than the budget" in de_log and "3 documents, 42 characters" in de_log


# --- a corpus shorter than the token budget -------------------------------------------------


def test_a_corpus_below_the_budget_is_recorded_whole_normalised_by_its_own_count_and_logged(
    tmp_path, tiny_llama_dir, caplog
):
    """Not an error: the language is recorded on all its tokens, its activation probabilities
    are divided by its own token count (not the budget), and the job log says so."""
    import logging

    import polars as pl

    from langarith.corpora import Document, write_corpus
    from langarith.models import prepare_model
    from langarith.neurons import run_lape
    from langarith.record import record_corpus

    model_dir = tmp_path / "models" / "tiny"
    model_dir.parent.mkdir()
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, model_dir)
    sizes = {"en": 40, "de": 4}  # sentences: de has far fewer tokens than en
    recording = {"chunk_tokens": 64, "batch_size": 4, "max_tokens": 100_000, "prepend_bos": True}
    stats = {}
    for lang in ("en", "de"):
        lines = repo_lines(lang, sizes[lang])
        corpus = tmp_path / f"{lang}.parquet"
        write_corpus([Document(str(i), t) for i, t in enumerate(lines)], corpus, source=lang)
        with caplog.at_level(logging.WARNING, logger="langarith"):
            caplog.clear()
            stats[lang] = record_corpus(str(model_dir), str(corpus), {}, recording, {"lang": lang})
        n = stats[lang].n_tokens
        assert 0 < n < 100_000
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(f"has {n} tokens, fewer than the budget 100000" in w for w in warnings)
    assert stats["de"].n_tokens < stats["en"].n_tokens / 4
    out = tmp_path / "sel"
    summary = run_lape(
        [stats["en"], stats["de"]], ["en", "de"], 0.1, 0.5, 0.5,
        f"{out}.parquet", f"{out}.pt", f"{out}.json",
    )  # fmt: skip
    assert summary["n_tokens"] == {"en": stats["en"].n_tokens, "de": stats["de"].n_tokens}
    neurons = pl.read_parquet(f"{out}.parquet")
    assert neurons.height > 0
    for row in neurons.iter_rows(named=True):
        s = stats[row["lang"]]
        expected = s.n_active[row["layer"], row["neuron"]] / s.n_tokens  # its own count
        assert row["p_active"] == pytest.approx(expected)


def test_the_paper_config_passes_every_check():
    """config/paper.yaml (hub models and corpus, ``device_map: auto`` on the largest model)."""
    check(yaml.safe_load((REPO / "config" / "paper.yaml").read_text()))
