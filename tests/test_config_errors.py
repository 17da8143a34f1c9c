"""A bad configuration fails before any job runs, with one line naming the key or the file.

The tables run ``check_everything``, the one entry point ``workflow/rules/common.smk`` calls,
in-process; two cases (a config-file error, a config error) go through a real ``snakemake
--dry-run`` to show the line reaches the user as it is, without a traceback, and one real run
shows a refused change leaves a finished output untouched. The classes of issue 16 each have a
parametrized table: non-finite numbers, integral floats for integers, unknown keys in every
schema mapping, names with control characters or too long, references (layers, the logit lens,
analysis languages, prompt files), data that is not what it claims (weights, corpus, the readers
of the pipeline's files, a local corpus read whole until it is fetched, every local task file),
and config files Snakemake cannot read (``strict_yaml.config_file_problem``, ``python -m
langarith.workflow.settings``).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import REPO, repo_corpus, repo_lines

from langarith.experiments.tasks import get_task
from langarith.workflow.settings import ConfigError, check_everything

SCHEMAS = REPO / "workflow" / "schemas"
SECTIONS = {name: SCHEMAS / f"{name}.schema.yaml" for name in ("tasks", "fallback", "analysis")}
SECTIONS["quality"] = SCHEMAS / "quality.schema.yaml"


# A valid safetensors file without tensors: an 8-byte header length, then the JSON header.
EMPTY_SAFETENSORS = (2).to_bytes(8, "little") + b"{}"


def fake_model(
    directory: Path, model_type: str | None = "llama", weights: str = "model.safetensors"
):
    """A directory that passes for a local model at config time (config.json + a weights file)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 32}
    if model_type is not None:
        config["model_type"] = model_type
    (directory / "config.json").write_text(json.dumps(config))
    (directory / weights).write_bytes(
        EMPTY_SAFETENSORS if weights.endswith(".safetensors") else b""
    )
    return directory


@pytest.fixture
def base(tmp_path) -> dict:
    """The tiny test config (.test/) with a fake local model and the repository's text as corpus."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["corpus"]["path"] = str(repo_corpus())
    config["models"]["tiny"]["source"]["path"] = str(fake_model(tmp_path / "model"))
    return config


def check(config: dict, configfiles=()) -> None:
    check_everything(config, SCHEMAS / "config.schema.yaml", SECTIONS, configfiles, root=REPO)


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


@pytest.mark.parametrize("dtype", ["auto", "float32", "bfloat16", "float16"])
def test_every_dtype_setting_passes(base, dtype):
    base["models"]["tiny"]["dtype"] = dtype
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
        "languages: 'en' is listed twice (each entry once)",
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
        "dtype-unknown",
        lambda c, _: c["models"]["tiny"].update(dtype="bf16"),
        "models.tiny.dtype: 'bf16' is not one of ['auto', 'float32', 'bfloat16', 'float16']",
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
    # the optional sections: checked by the same entry point, with the same exception type
    (
        "task-unknown-selection",
        lambda c, _: c["tasks"]["qa"].update(selections=["lape-99"]),
        "tasks.qa.selections: 'lape-99' is not a key of selections",
    ),
    (
        "task-steer-language-not-configured",
        lambda c, _: c["tasks"]["nli"].update(steer_langs=["ko"]),
        "tasks.nli.steer_langs: 'ko' is not one of the configured languages",
    ),
    (
        "fallback-unknown-selection",
        lambda c, _: c["fallback"].update(selections=["lape-99"]),
        "fallback.selections: 'lape-99' is not a key of selections",
    ),
    (
        "fallback-order-none-configured",
        lambda c, _: c["fallback"].update(order=["ko", "ja"]),
        "fallback.order: none of these languages is configured",
    ),
    (
        "analysis-selection-not-forcing",
        lambda c, _: c["analysis"].update(selection="lape-20"),
        "analysis.selection: 'lape-20' is not one of forcing.selections",
    ),
    (
        "logit-lens-target-not-configured",
        lambda c, _: c["analysis"]["logit_lens"].update(targets=["ko"]),
        "analysis.logit_lens.targets: 'ko' is not a configured language",
    ),
    (
        "logit-lens-unsteered-condition",
        lambda c, _: c["analysis"]["logit_lens"].update(condition="baseline"),
        "analysis.logit_lens.condition: needs a steered condition",
    ),
    (
        "calibration-unknown-condition",
        lambda c, _: c["quality"]["calibration"].update(condition="nope"),
        "quality.calibration.condition: 'nope' is not a condition",
    ),
    (
        "calibration-target-not-configured",
        lambda c, _: c["quality"]["calibration"].update(targets=["ko"]),
        "quality.calibration.targets: 'ko' is not a configured language",
    ),
    (
        "calibrated-use-without-calibration",
        lambda c, _: (
            c["conditions"].update(
                cal=[{"op": "add", "lang": "target", "value": "mean", "strength": "calibrated"}]
            ),
            c["tasks"]["qa"]["conditions"].append("cal"),
            c["quality"].pop("calibration"),
        ),
        "tasks.qa.conditions: 'cal' has strength 'calibrated' but quality.calibration is not",
    ),
    (
        "calibrated-target-not-calibrated",
        lambda c, _: (
            c["conditions"].update(
                cal=[{"op": "add", "lang": "target", "value": "mean", "strength": "calibrated"}]
            ),
            c["forcing"]["conditions"].append("cal"),
        ),
        "forcing.conditions: 'cal' needs an α for en zh es; add them to quality.calibration",
    ),
    (
        "instruct-with-a-value",
        step(op="instruct", value=1.0),
        "conditions.bad[0]: op 'instruct' takes no other keys, got ['value']",
    ),
    (
        "residual-add",
        step(op="add", site="residual", value="mean"),
        "conditions.bad[0]: op 'add' does not act on the residual stream",
    ),
    (
        "instructed-task-condition",
        lambda c, _: (
            c["conditions"].update(asked=[{"op": "instruct"}]),
            c["tasks"]["qa"]["conditions"].append("asked"),
        ),
        "tasks.qa.conditions: condition 'asked' has an instruct step, which applies to the "
        "forcing prompts only",
    ),
    (
        "instructions-missing-a-pair",
        lambda c, tmp: (
            c["conditions"].update(asked=[{"op": "instruct"}]),
            c["forcing"]["conditions"].append("asked"),
            (tmp / "few.tsv").write_text(
                "source\ttarget\tinstruction\nen\ten\tAnswer in English.\n"
            ),
            c["forcing"].update(instructions=str(tmp / "few.tsv")),
        ),
        "few.tsv: no instruction for 9 pair(s): en->de en->fr",
    ),
    (
        "instructions-file-missing",
        lambda c, tmp: (
            c["conditions"].update(asked=[{"op": "instruct"}]),
            c["forcing"]["conditions"].append("asked"),
            c["forcing"].update(instructions=str(tmp / "none.tsv")),
        ),
        "none.tsv' does not exist",
    ),
    (
        "quality-key-typo",
        lambda c, _: c["quality"].update(max_repetitions=0.3),
        "quality: Additional properties are not allowed ('max_repetitions' was unexpected)",
    ),
    (
        "relevance-encoder",
        lambda c, _: c["quality"]["relevance"].update(encoder="labse"),
        "quality.relevance.encoder: 'labse' is not one of",
    ),
    (
        "relevance-layer",
        lambda c, _: c["quality"]["relevance"].update(layer="last"),
        "quality.relevance.layer: 'last' is not allowed",
    ),
    (
        "relevance-no-unsteered-condition",
        lambda c, _: c["forcing"].update(conditions=["activate"]),
        "quality.relevance: forcing.conditions has no unsteered condition",
    ),
    (
        "relevance-pivot",
        lambda c, _: c["quality"]["relevance"].update(pivot="ko"),
        "quality.relevance.pivot: 'ko' is not a configured language",
    ),
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


# (task, its language whose file is broken, that file, the broken content or None for missing,
# what the line says after "tasks.<task>.source: <copy>/<file>")
TASK_FILE_CASES = [
    ("translation", "zh", "zho_Hans.txt", None, ": file not found (language 'zh')"),
    ("translation", "zh", "zho_Hans.txt", "one line\n", ": 1 lines but "),
    ("qa", "de", "xquad.de.json", None, ": file not found (language 'de')"),
    ("qa", "de", "xquad.de.json", "{broken", ": invalid JSON (Expecting property name"),
    ("reading", "de", "deu_Latn.jsonl", "{broken\n", ":1: invalid JSON"),
    ("nli", "es", "test.es.jsonl", None, ": file not found (language 'es')"),
    (
        "nli",
        "es",
        "test.es.jsonl",
        '{"premise": "A man sleeps.", "label": 0}\n',
        "missing field 'hypothesis'",
    ),
]


@pytest.mark.parametrize(
    ("task", "lang", "filename", "content", "expected"),
    [c for c in TASK_FILE_CASES],
    ids=[
        f"{c[0]}-{'missing' if c[3] is None else 'broken'}-{i}"
        for i, c in enumerate(TASK_FILE_CASES)
    ],
)
def test_every_language_file_of_a_local_task_is_read_before_any_job(
    base, tmp_path, task, lang, filename, content, expected
):
    """A copy of the built-in set as a local source, one language's file missing or broken:
    the check names the task's source key and the file, before any job reads it."""
    import shutil

    from langarith.experiments.tasks.sources import BUILTIN_ROOT

    copy_dir = tmp_path / task
    shutil.copytree(BUILTIN_ROOT / task, copy_dir)
    base["tasks"][task]["source"] = {"kind": "local", "path": str(copy_dir)}
    assert lang in base["tasks"][task]["langs"]
    check(base)  # the intact copy passes
    broken = copy_dir / filename
    if content is None:
        broken.unlink()
    else:
        broken.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        check(base)
    message = str(info.value)
    assert message.startswith(f"tasks.{task}.source: {broken}"), message
    assert expected in message and "\n" not in message


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


# Two representative cases through a real Snakemake run (every other one is in CASES, checked
# in-process): an error found in the config file Snakemake read (its path and line), and one
# found in the loaded config.
DRY_RUN_CASES = [
    ("duplicate-condition", None, "duplicate key 'activate' in conditions"),
    (
        "top-rate",
        lambda c: c["selections"]["lape-10"].update(top_rate=1.5),
        "selections.lape-10.top_rate: 1.5 is outside (0, 1)",
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
        edit(base)
        text = yaml.safe_dump(base, sort_keys=False)
    workdir = tmp_path / "run"
    line = assert_one_line_error(snakemake(workdir, text, "--dry-run"), expected)
    assert line.startswith("langarith: config error: ")
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


@pytest.mark.slow
def test_a_hub_corpus_fetch_stops_at_its_budget_and_the_file_says_so(base, tmp_path):
    """``fetch_corpus`` on a hub corpus (a local ``json`` dataset): a language with more text
    than ``max_chars`` is cut at it and its file records the cut; a shorter one is kept whole
    and its log says so."""
    import polars as pl

    from langarith.io.corpora import corpus_cut_by

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
    base["quality"]["relevance"]["validate"] = False  # a hub corpus has no aligned documents
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

    from langarith.io.corpora import Document, write_corpus
    from langarith.io.selection import run_lape
    from langarith.model.loading import prepare_model
    from langarith.model.recording import record_corpus

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
            stats[lang] = record_corpus(str(model_dir), str(corpus), {}, recording, {"lang": lang})[
                "mlp"
            ]
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


# --- classes of bad input that once got past the checks (issue 16) ---------------------------


def _set(path: str, value):
    """An edit setting the dotted ``path`` (``a.b.0.c``; digits index lists) to ``value``,
    making missing mappings on the way."""

    def edit(c: dict, _tmp: Path) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = c
        for part in parents:
            node = node[part] if isinstance(part, int) else node.setdefault(part, {})
        node[last] = value

    return edit


NON_FINITE = [
    ("selections.lape-10.top_rate", float("nan")),
    ("selections.lape-20.filter_rate", float("inf")),
    ("forcing.generation.repetition_penalty", float("nan")),
    ("conditions.activate.0.strength", float("inf")),
    ("conditions.deactivate-activate.0.value", float("-inf")),
    ("fallback.value", float("nan")),
    ("analysis.deep_fraction", float("nan")),
    ("analysis.thresholds.success_margin", float("-inf")),
    ("quality.max_repetition", float("nan")),
    ("quality.calibration.grid", [1.0, float("nan")]),
    ("recording.max_tokens", float("inf")),
]


@pytest.mark.parametrize(("key", "value"), NON_FINITE, ids=[k for k, _ in NON_FINITE])
def test_non_finite_numbers_are_refused_anywhere(base, tmp_path, key, value):
    _set(key, value)(base, tmp_path)
    with pytest.raises(ConfigError, match=r"is not a finite number") as info:
        check(base)
    assert str(info.value).startswith(key.split(".")[0])


INTEGRAL_FLOATS = [
    ("recording.batch_size", 4.0),
    ("recording.chunk_tokens", 64.0),
    ("recording.shards", 1.0),
    ("forcing.generation.max_new_tokens", 6.0),
    ("forcing.generation.batch_size", 8.0),
    ("models.tiny.gpus", 1.0),
    ("tasks.qa.max_items", 2.0),
    ("tasks.qa.generation.batch_size", 8.0),
    ("fallback.max_prompts", 3.0),
    ("analysis.logit_lens.top_k", 5.0),
    ("quality.ngram", 3.0),
    ("quality.calibration.max_new_tokens", 4.0),
]


@pytest.mark.parametrize(("key", "value"), INTEGRAL_FLOATS, ids=[k for k, _ in INTEGRAL_FLOATS])
def test_integral_floats_where_integers_are_meant_are_refused(base, tmp_path, key, value):
    """Refused, not rounded: ``4.0`` would reach a job's ``params:`` as a float (and rerun every
    job that takes it); the message says what to write."""
    _set(key, value)(base, tmp_path)
    with pytest.raises(ConfigError) as info:
        check(base)
    assert str(info.value) == (
        f"{key}: {value!r} is not an integer: write {int(value)} (a float where a count is "
        "meant is refused, not rounded)"
    )


def test_layers_as_integral_floats_are_refused(base):
    base["conditions"]["activate"][0]["layers"] = [0, 1.0]
    with pytest.raises(ConfigError, match=r"^conditions\.activate\[0\]\.layers\[1\]: 1\.0 is not"):
        check(base)


UNKNOWN_KEYS = [
    ("corpus.verison", "corpus", "did you mean 'version'?"),
    ("models.tiny.source.pth", "models.tiny.source", "did you mean 'path'?"),
    ("models.tiny.dtyp", "models.tiny", "did you mean 'dtype'?"),
    ("langid.modle", "langid", "did you mean 'model'?"),
    ("recording.max_token", "recording", "did you mean 'max_tokens'?"),
    ("forcing.generation.positon", "forcing.generation", "did you mean 'position"),
    ("selections.lape-10.top_rat", "selections.lape-10", "did you mean 'top_rate'?"),
    ("tasks.qa.max_item", "tasks.qa", "did you mean 'max_items'?"),
    ("tasks.qa.source.splt", "tasks.qa.source", "did you mean 'split'?"),
    ("fallback.generation.max_new_token", "fallback.generation", "did you mean 'max_new_tokens'?"),
    ("analysis.thresholds.deep_shar", "analysis.thresholds", "did you mean 'deep_share'?"),
    ("analysis.logit_lens.topk", "analysis.logit_lens", "did you mean 'top_k'?"),
    ("quality.calibration.gird", "quality.calibration", "did you mean 'grid'?"),
]


@pytest.mark.parametrize(("key", "where", "hint"), UNKNOWN_KEYS, ids=[k for k, *_ in UNKNOWN_KEYS])
def test_unknown_keys_are_refused_in_every_section(base, tmp_path, key, where, hint):
    _set(key, 1)(base, tmp_path)
    with pytest.raises(ConfigError) as info:
        check(base)
    unknown = key.rsplit(".", 1)[1]
    message = str(info.value)
    assert message.startswith(f"{where}: Additional properties are not allowed ('{unknown}' was")
    assert hint in message


def test_unknown_keys_in_language_keyed_mappings_are_refused(base):
    base["analysis"]["task_metrics"] = {"translaton": "chrf"}
    with pytest.raises(ConfigError, match=r"^analysis\.task_metrics: 'translaton' is not one of"):
        check(base)


# Mappings whose keys are free by nature: they are not settings but names of something else.
FREE_MAPPINGS = {
    "config.schema.yaml:properties.models.additionalProperties.properties.device_map",  # modules
    "config.schema.yaml:properties.tasks",  # these four: workflow/schemas/<section>.schema.yaml
    "config.schema.yaml:properties.fallback",
    "config.schema.yaml:properties.analysis",
    "config.schema.yaml:properties.quality",
}


def _object_schemas(node, where: str):
    if isinstance(node, dict):
        kinds = node.get("type")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
        if "object" in kinds or "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _object_schemas(value, f"{where}[{i}]")


def test_every_mapping_of_every_schema_names_its_keys():
    """``additionalProperties: false``, or keys constrained by ``propertyNames`` (names,
    language codes, devices), or one of the few mappings of free names listed above."""
    loose = []
    for path in sorted(SCHEMAS.glob("*.schema.yaml")):
        for where, node in _object_schemas(yaml.safe_load(path.read_text()), ""):
            named = node.get("additionalProperties") is False or "propertyNames" in node
            if not named and f"{path.name}:{where}" not in FREE_MAPPINGS:
                loose.append(f"{path.name}:{where}")
    assert loose == []


BAD_NAMES = [
    ("selections", "lape-10", "lape-10\n", "U+000A"),
    ("conditions", "activate", "activate\t", "U+0009"),
    ("models", "tiny", "tiny\x00", "U+0000"),
    ("selections", "lape-20", "x" * 300, "is 300 characters long"),
    ("conditions", "activate", "a" * 101, "is 101 characters long"),
]


@pytest.mark.parametrize(
    ("section", "old", "new", "expected"), BAD_NAMES, ids=[f"{s}-{e}" for s, _, _, e in BAD_NAMES]
)
def test_names_with_control_characters_or_too_long_are_refused(
    base, tmp_path, section, old, new, expected
):
    rename(section, old, new)(base, tmp_path)
    with pytest.raises(ConfigError, match=re.escape(expected)) as info:
        check(base)
    assert str(info.value).startswith(f"{section}")


CONTROL_VALUES = [
    ("corpus.name", "flores\n"),
    ("corpus.pattern", "{flores}.txt\n"),
    ("forcing.sources", ["en", "de\n"]),
    ("languages", ["en", "de", "fr", "zh", "es\r"]),
    ("tasks.qa.langs", ["en\n", "de"]),
    ("models.tiny.source.path", "/models/tiny\n"),
]


@pytest.mark.parametrize(("key", "value"), CONTROL_VALUES, ids=[k for k, _ in CONTROL_VALUES])
def test_strings_with_control_characters_are_refused(base, tmp_path, key, value):
    _set(key, value)(base, tmp_path)
    with pytest.raises(ConfigError, match=r"holds the control character U\+00") as info:
        check(base)
    assert str(info.value).startswith(key)


def test_stop_strings_may_hold_newlines(base):
    base["forcing"]["generation"]["stop_strings"] = ["\nQ:", "\n\n"]
    check(base)


def test_the_name_length_limit_is_inclusive(base, tmp_path):
    rename("conditions", "activate", "a" * 100)(base, tmp_path)
    base["forcing"]["conditions"] = ["baseline", "a" * 100]
    for task in base["tasks"].values():
        task["conditions"] = ["baseline"]
    check(base)


WEAK_MESSAGES = [
    (
        "forcing-targets-typo",
        _set("forcing.targets", "al"),
        "forcing.targets: 'al' is not allowed: expected 'all' or a list of strings",
    ),
    (
        "strength-typo",
        _set("conditions.activate.0.strength", "calibrate"),
        "conditions.activate[0].strength: 'calibrate' is not allowed: expected a number or "
        "'calibrated'",
    ),
    (
        "steer-langs-typo",
        _set("tasks.qa.steer_langs", "every"),
        "tasks.qa.steer_langs: 'every' is not allowed: expected 'all' or a list of strings",
    ),
    (
        "duplicate-language",
        _set("languages", ["en", "de", "fr", "de"]),
        "languages: 'de' is listed twice (each entry once)",
    ),
    (
        "duplicate-forcing-source",
        _set("forcing.sources", ["en", "en"]),
        "forcing.sources: 'en' is listed twice (each entry once)",
    ),
    (
        "yaml-no-in-languages",
        _set("languages", ["en", "de", False]),
        "languages[2]: False is not of type 'string' (YAML reads an unquoted no, yes, on, off, "
        "true or false as a boolean: quote it, e.g. 'no')",
    ),
    (
        "yaml-no-in-a-pair",
        _set("analysis.related_pairs", [["da", False]]),
        "analysis.related_pairs[0][1]: False is not of type 'string' (YAML reads",
    ),
    (
        "yaml-no-as-a-key",
        _set("corpus.configs", {False: "nb"}),
        "corpus.configs: the key False is a boolean: YAML reads an unquoted no, yes, on or off "
        "as one; quote it (e.g. 'no')",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [c[1:] for c in WEAK_MESSAGES], ids=[c[0] for c in WEAK_MESSAGES]
)
def test_messages_say_what_is_allowed(base, tmp_path, edit, expected):
    edit(base, tmp_path)
    with pytest.raises(ConfigError) as info:
        check(base)
    assert str(info.value).startswith(expected)


def _layers(n: int):
    """The fake local model with ``num_hidden_layers: n`` in its config.json."""

    def edit(c: dict, tmp: Path) -> None:
        path = fake_model(tmp / "deep-model")
        data = json.loads((path / "config.json").read_text())
        (path / "config.json").write_text(json.dumps({**data, "num_hidden_layers": n}))
        c["models"]["tiny"]["source"]["path"] = str(path)

    return edit


def _both(*edits):
    def edit(c: dict, tmp: Path) -> None:
        for one in edits:
            one(c, tmp)

    return edit


def _file(key: str, text: bytes | None):
    """``key`` set to a file holding ``text`` (``None``: a file that does not exist)."""

    def edit(c: dict, tmp: Path) -> None:
        path = tmp / f"{key}.txt"
        if text is not None:
            path.write_bytes(text)
        _set(key, str(path))(c, tmp)

    return edit


CAL = [{"op": "add", "lang": "target", "value": "mean", "strength": "calibrated"}]
SWEPT = [{"op": "diffmean", "site": "residual", "lang": "target", "layers": "best"}]


def _swept_forcing(c: dict, _tmp: Path) -> None:
    c["conditions"]["swept"] = SWEPT
    c["forcing"]["conditions"].append("swept")


REFERENCES = [
    (
        "layers-best-without-a-layer-sweep",
        _swept_forcing,
        "forcing.conditions: 'swept' has layers 'best' but quality.layer_sweep is not configured",
    ),
    (
        "layer-sweep-beyond-the-model",
        _both(_layers(18), _swept_forcing, _set("quality.layer_sweep", {"layers": [3, 18]})),
        "quality.layer_sweep.layers: layer 18 is outside the 18 layers of model 'tiny' (0-17; ",
    ),
    (
        "layer-sweep-language-not-configured",
        _both(_swept_forcing, _set("quality.layer_sweep", {"layers": [1], "targets": ["ko"]})),
        "quality.layer_sweep.targets: 'ko' is not a configured language",
    ),
    (
        "layers-best-in-a-task",
        _both(
            _swept_forcing,
            _set("quality.layer_sweep", {"layers": [1]}),
            _set("tasks.qa.conditions", ["baseline", "swept"]),
        ),
        "tasks.qa.conditions: condition 'swept' has layers 'best', which applies to the forcing "
        "prompts only",
    ),
    (
        "layers-beyond-the-model",
        _both(_layers(18), _set("conditions.activate.0.layers", [0, 999])),
        "conditions.activate[0].layers: [0, 999] reaches layer 999, but model 'tiny' has 18 "
        "layers (0-17; ",
    ),
    (
        "layers-one-beyond-the-model",
        _both(_layers(18), _set("conditions.deactivate-activate.1.layers", [17, 18])),
        "conditions.deactivate-activate[1].layers: [17, 18] reaches layer 18",
    ),
    (
        "logit-lens-calibrated-selection-not-calibrated",  # the lens takes α per target too
        _both(
            _set("conditions.cal", CAL),
            _set("analysis.logit_lens.condition", "cal"),
            _set("analysis.logit_lens.selection", "lape-20"),
        ),
        "analysis.logit_lens.condition: 'cal' needs selection 'lape-20' in "
        "quality.calibration.selections",
    ),
    (
        "related-pair-not-configured",
        _set("analysis.related_pairs", [["es", "pt"]]),
        "analysis.related_pairs: the pair ['es', 'pt'] names pt, not a configured language",
    ),
    (
        "unrelated-pair-not-configured",
        _set("analysis.unrelated_pairs", [["ko", "en"]]),
        "analysis.unrelated_pairs: the pair ['ko', 'en'] names ko",
    ),
    (
        "high-resource-not-configured",
        _set("analysis.high_resource", ["en", "ja"]),
        "analysis.high_resource: 'ja' is not a configured language",
    ),
    ("fallback-prompts-missing", _file("fallback.prompts", None), "fallback.prompts: '/"),
    (
        "fallback-prompts-empty",
        _file("fallback.prompts", b"\n  \n"),
        "fallback.prompts: ",
    ),
    ("forcing-questions-missing", _file("forcing.questions", None), "forcing.questions: '/"),
    (
        "forcing-questions-without-a-source",
        _file("forcing.questions", b"lang\tquestion_idx\tquestion\nen\t0\tHow are you?\n"),
        "has no questions in de (forcing.sources)",
    ),
    (
        "forcing-questions-not-a-table",
        _file("forcing.questions", b"just some text\n"),
        "forcing.questions.txt: missing columns ['lang', 'question', 'question_idx']",
    ),
    (
        "calibration-questions-missing",
        _file("quality.calibration.questions", None),
        "quality.calibration.questions: '/",
    ),
    (
        "task-local-source-missing",
        _set("tasks.nli.source", {"kind": "local", "path": "/no/such/xnli"}),
        "tasks.nli.source.path: '/no/such/xnli' does not exist",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [c[1:] for c in REFERENCES], ids=[c[0] for c in REFERENCES]
)
def test_references_are_checked_before_any_job(base, tmp_path, edit, expected):
    edit(base, tmp_path)
    with pytest.raises(ConfigError) as info:
        check(base)
    message = str(info.value)
    assert expected in message
    assert re.match(r"^[a-z_]+(\.[\w-]+|\[\d+\])*: ", message), message  # the key first


def test_layers_within_the_model_pass(base, tmp_path):
    _both(_layers(18), _set("conditions.activate.0.layers", [0, 17]))(base, tmp_path)
    check(base)


def test_layers_are_checked_against_a_prepared_model(base, tmp_path, monkeypatch):
    """A hub model is checked once it is prepared (``resources/models/<name>``, same source);
    before that (nothing on disk) the check is left to the job."""
    source = {"kind": "hub", "id": "nobody/no-such-model", "revision": None}
    base["models"]["tiny"]["source"] = source
    base["conditions"]["activate"][0]["layers"] = [0, 5]
    monkeypatch.chdir(tmp_path)
    check(copy.deepcopy(base))  # not prepared, not in the cache: passes
    prepared = tmp_path / "resources" / "models" / "tiny"
    prepared.mkdir(parents=True)
    (prepared / "langarith_model.json").write_text(json.dumps({"source": source, "path": "."}))
    (prepared / "config.json").write_text(json.dumps({"text_config": {"num_hidden_layers": 4}}))
    with pytest.raises(ConfigError, match=r"reaches layer 5, but model 'tiny' has 4 layers"):
        check(copy.deepcopy(base))
    other = {**source, "revision": "abc"}  # prepared from another source: not used
    (prepared / "langarith_model.json").write_text(json.dumps({"source": other, "path": "."}))
    check(copy.deepcopy(base))


# --- data that is not what it claims: `<file>: <what is wrong>` -------------------------------

HEADER = b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}'
GARBAGE_WEIGHTS = [
    ("random-bytes", bytes(range(256)) * 4, "not a safetensors file (header length"),
    ("empty", b"", "not a safetensors file (0 bytes, no header)"),
    ("header-not-json", (6).to_bytes(8, "little") + b"{nope}", "its header is not JSON"),
    (
        "truncated",  # a header whose tensor needs 16 bytes, and 8 stored
        len(HEADER).to_bytes(8, "little") + HEADER + b"\x00" * 8,
        "truncated or damaged: tensor 'w' needs bytes up to 16 of 8 stored",
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [g[1:] for g in GARBAGE_WEIGHTS], ids=[g[0] for g in GARBAGE_WEIGHTS]
)
def test_garbage_weights_are_refused_naming_the_file(base, tmp_path, data, expected):
    model = Path(base["models"]["tiny"]["source"]["path"])
    (model / "model.safetensors").write_bytes(data)
    with pytest.raises(ConfigError) as info:
        check(base)
    assert str(info.value).startswith(f"models.tiny.source.path: {model / 'model.safetensors'}: ")
    assert expected in str(info.value)


# (id, the bytes of de.txt, what the line says after "corpus.path: <corpus>/de.txt: ")
CORPUS_TEXT_CASES = [
    ("nul-only", b"\x00" * 4096, "a binary file, not text (a NUL byte at offset 0, line 1)"),
    (
        "binary-tail",
        b"text\n" + bytes(range(256)),
        "a binary file, not text (a NUL byte at offset 5, line 2)",
    ),
    # past the first 64 KiB and past the first 1 MiB chunk: the whole file is read
    ("late-nul", b"x\n" * 600_000 + b"y\x00\n", "a NUL byte at offset 1200001, line 600001"),
    (
        "latin-1",
        b"ok\ncaf\xe9 au lait\n",
        "not UTF-8 text (invalid continuation byte at byte 6, line 2)",
    ),
    (
        "late-bad-byte",
        b"x\n" * 600_000 + b"\xff\n",
        "not UTF-8 text (invalid start byte at byte 1200000, line 600001)",
    ),
    (
        "truncated-character",
        "ab\né".encode()[:-1],
        "not UTF-8 text (unexpected end of data at byte 3, line 2)",
    ),
    ("blank-lines-only", b"   \n\n\t\n", "no line holds any text"),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [c[1:] for c in CORPUS_TEXT_CASES],
    ids=[c[0] for c in CORPUS_TEXT_CASES],
)
def test_a_corpus_file_that_is_not_text_is_refused_naming_the_file(base, tmp_path, data, expected):
    corpus_dir({**ALL_LANGS, "de.txt": data})(base, tmp_path)
    with pytest.raises(ConfigError) as info:
        check(base)
    message = str(info.value)
    assert message.startswith(f"corpus.path: {tmp_path / 'corpus' / 'de.txt'}: "), message
    assert expected in message
    assert message.endswith("; a local corpus is UTF-8 text, one document per line")


def test_a_fetched_corpus_file_is_not_read_again_until_it_changes(base, tmp_path, monkeypatch):
    """Once ``resources/corpus/<name>/<lang>.parquet`` is newer than the file, only the file's
    start is looked at (its job read it whole); a file changed after that is read whole again."""
    import os

    corpus_dir({**ALL_LANGS, "de.txt": b"fine\n" * 20_000 + b"\xff\n"})(base, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="invalid start byte at byte 100000, line 20001"):
        check(base)
    fetched = tmp_path / "resources" / "corpus" / base["corpus"]["name"] / "de.parquet"
    fetched.parent.mkdir(parents=True)
    fetched.write_bytes(b"")
    source = tmp_path / "corpus" / "de.txt"
    os.utime(source, (fetched.stat().st_mtime - 10,) * 2)
    check(base)  # the bad byte lies past the start: not read again
    os.utime(source, (fetched.stat().st_mtime + 10,) * 2)
    with pytest.raises(ConfigError, match="invalid start byte at byte 100000"):
        check(base)


def test_the_corpus_text_check_reads_every_chunk_boundary_right(tmp_path, monkeypatch):
    """``text_problem`` in 4-byte chunks: a character split across chunks is fine, and the byte
    offset and line of a problem are those of the whole file."""
    import langarith.io.corpora.local as local

    monkeypatch.setattr(local, "_CHUNK", 4)
    cases = {
        "héllo\nwörld\n€uro\n".encode(): None,
        b"ab\ncd\xc3\xa9\nef\xe9gh\n": (
            "not UTF-8 text (invalid continuation byte at byte 10, line 3)"
        ),
        "ab\né".encode() + b"\xe2\x82": "not UTF-8 text (unexpected end of data at byte 5, line 2)",
        b"abc\ndef\nx\x00": "a binary file, not text (a NUL byte at offset 9, line 3)",
    }
    for i, (data, expected) in enumerate(cases.items()):
        path = tmp_path / f"{i}.txt"
        path.write_bytes(data)
        assert local.text_problem(path) == expected, data
        if expected and expected.startswith("not UTF-8"):  # the offset Python itself reports
            with pytest.raises(UnicodeDecodeError) as info:
                data.decode("utf-8")
            assert f"at byte {info.value.start}," in expected


def test_the_corpus_reader_refuses_nul_characters(tmp_path):
    from langarith.io.corpora.local import read_language

    (tmp_path / "en.txt").write_bytes(b"one line\n" * 10_000 + b"x\x00y\n")
    with pytest.raises(ValueError, match=r"en\.txt': line 10001 holds a NUL character"):
        read_language(tmp_path, "en")


def _neuron_set(parquet, summary):
    from langarith.io.selection import read_selection

    return read_selection(parquet, summary)


def _alphas(_parquet, summary):
    from langarith.io.calibration import read_alphas

    return read_alphas(summary, ["de"])


def _pack_meta(_parquet, summary):
    from langarith.io.pack import read_pack_meta

    return read_pack_meta(Path(summary).parent)


def _stats(parquet, _summary):
    from langarith.io.activations import ActivationStats

    return ActivationStats.read(parquet)


def _corpus(parquet, _summary):
    from langarith.io.corpora import read_corpus

    return read_corpus(parquet)


def _generations(parquet, _summary):
    from langarith.io.langid import identify_file

    identify_file(str(parquet), str(parquet.with_suffix(".langid.parquet")))


def _langid_table(parquet, _summary):
    from langarith.experiments.quality import run_quality_job

    run_quality_job(str(parquet), str(parquet.with_suffix(".quality.parquet")))


BAD_DATA = [
    (
        "neurons-json-truncated",
        _neuron_set,
        "json",
        b'{"languages": ["en", "de"], "n_la',
        "ends early",
    ),
    ("neurons-json-binary", _neuron_set, "json", b"\xff\xfe\x00garbage", "not UTF-8 text"),
    ("neurons-json-a-list", _neuron_set, "json", b"[1, 2]", "expected a JSON object, found list"),
    (
        "neurons-parquet-garbage",
        _neuron_set,
        "parquet",
        b"PAR1 not really",
        "not a readable Parquet",
    ),
    ("neurons-json-cut-in-a-list", _neuron_set, "json", b'{"languages": [', "ends early"),
    ("neurons-parquet-nul-bytes", _neuron_set, "parquet", b"\x00" * 64, "not a readable Parquet"),
    (
        "calibration-json-truncated",
        _alphas,
        "json",
        b'{"targets": {"de": {"alpha": 1',
        "ends early",
    ),
    (
        "pack-meta-garbage",
        _pack_meta,
        "json",
        b"{'format': 1}",
        "not valid JSON: Expecting property name",
    ),
    ("activations-garbage", _stats, "parquet", b"garbage" * 10, "not a readable Parquet"),
    ("activations-missing", _stats, "parquet", None, "file not found"),
    ("corpus-parquet-garbage", _corpus, "parquet", b"garbage", "not a readable Parquet"),
    ("generations-garbage", _generations, "parquet", b"garbage", "not a readable Parquet"),
    ("langid-table-missing", _langid_table, "parquet", None, "file not found"),
]


@pytest.mark.parametrize(
    ("reader", "bad", "data", "expected"),
    [b[1:] for b in BAD_DATA],
    ids=[b[0] for b in BAD_DATA],
)
def test_readers_name_the_file_and_what_is_wrong(tmp_path, reader, bad, data, expected):
    import polars as pl

    from langarith.io.pack import META

    parquet, summary = tmp_path / "sel.parquet", tmp_path / META
    pl.DataFrame({"lang": ["en"], "layer": [0], "neuron": [1]}).write_parquet(parquet)
    summary.write_text(json.dumps({"languages": ["en"], "n_layers": 1, "width": 2}))
    target = parquet if bad == "parquet" else summary
    if data is None:
        target.unlink()
    else:
        target.write_bytes(data)
    with pytest.raises(ValueError) as info:
        reader(parquet, summary)
    message = str(info.value)
    assert message.startswith(f"{target}: ") and expected in message, message
    assert "\n" not in message


def test_a_garbage_weights_file_fails_loading_naming_the_file(tmp_path):
    from langarith.model.loading import load_model

    model = fake_model(tmp_path / "model")
    (model / "model.safetensors").write_bytes(b"\x00" * 100)
    (model / "langarith_model.json").write_text(json.dumps({"source": {}, "path": "."}))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(model / 'model.safetensors'))}: not a"):
        load_model(model)


# --- config files Snakemake cannot read (it reads --configfile before the Snakefile runs) -----

BAD_FILES = [
    ("missing", None, "{path}: no such file"),
    ("binary", bytes(range(256)), "{path}: a binary file, not a JSON or YAML config"),
    ("not-utf8", b"languages: [en, de]\ncorpus: caf\xe9\n", "{path}:2: not UTF-8 text"),
    ("empty", b"", "{path}: empty"),
    ("only-comments", b"# nothing here\n\n", "{path}: holds no settings (only comments)"),
    ("a-list", b"- languages\n- models\n", "{path}:1: the top level is a list, not a mapping"),
    ("a-scalar", b"languages\n", "{path}:1: the top level is a str, not a mapping"),
    (
        "tab-indented",
        b"recording:\n  chunk_tokens: 64\n\tbatch_size: 4\n",
        "{path}:3: a tab in the indentation (YAML indents with spaces only)",
    ),
    ("syntax", b"languages: [en, de\nmodels: {}\n", "{path}:2: not valid YAML ("),
    ("two-documents", b"a: 1\n---\nb: 2\n", "{path}: holds several YAML documents"),
]


@pytest.mark.parametrize(
    ("data", "expected"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_a_config_file_that_is_not_a_mapping_says_file_and_line(tmp_path, data, expected):
    from langarith.workflow.settings.strict_yaml import config_file_problem

    path = tmp_path / "config.yaml"
    if data is not None:
        path.write_bytes(data)
    assert config_file_problem(path).startswith(expected.format(path=path))


def test_a_json_config_file_with_tabs_is_fine(tmp_path, base):
    from langarith.workflow.settings.strict_yaml import config_file_problem

    path = tmp_path / "config.json"
    path.write_text(json.dumps(base, indent="\t"))
    assert config_file_problem(path) is None
    check(base, [path])


def test_the_command_line_check_names_the_file_and_line(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("languages: [en, de]\nrecording:\n\tbatch_size: 4\n")
    cmd = [sys.executable, "-m", "langarith.workflow.settings", "--workflow", str(REPO), str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr == (
        f"langarith: config error: {path}:3: a tab in the indentation (YAML indents with "
        "spaces only)\n"
    )


# --- a refused config change never costs a finished output ---------------------------------

# Both change fetch_corpus's params: accepted, they would rerun it (and delete its output first).
REFUSED_EDITS = [
    ("corpus-key-typo", lambda c: c["corpus"].update(verison="2")),
    ("corpus-pattern-newline", lambda c: c["corpus"].update(pattern="{flores}.txt\n")),
]


@pytest.mark.slow
def test_a_refused_config_change_never_deletes_a_finished_output(base, tmp_path):
    """Snakemake deletes a job's outputs before it reruns it; a change the checks refuse stops
    the run before any job, so the output made under the previous config stays as it was."""
    workdir = tmp_path / "run"
    target = "resources/corpus/flores/en.parquet"
    result = snakemake(workdir, yaml.safe_dump(base, sort_keys=False), target)
    assert result.returncode == 0, result.stdout + result.stderr
    output = workdir / target
    before = (output.read_bytes(), output.stat().st_mtime_ns)
    for name, edit in REFUSED_EDITS:
        config = copy.deepcopy(base)
        edit(config)
        result = snakemake(workdir, yaml.safe_dump(config, sort_keys=False), target)
        assert_one_line_error(result, "langarith: config error: ")
        assert (output.read_bytes(), output.stat().st_mtime_ns) == before, name
    # and the previous config still finds nothing to do
    result = snakemake(workdir, yaml.safe_dump(base, sort_keys=False), target, "--dry-run")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


def test_a_plan_beyond_the_models_layers_says_so(tmp_path):
    """The job's own guard, for a model whose layer count was not on disk at config time."""
    import numpy as np

    from langarith.core.conditions import LanguageTables, build_plan, parse_condition
    from langarith.core.selection import NeuronSet

    idx = [np.array([0, 1])] * 2
    neurons = NeuronSet(("en", "de"), 2, 4, {"en": idx, "de": idx})
    tables = LanguageTables({k: np.ones((2, 4)) for k in "en de".split()}, {})
    steps = parse_condition("late", [{"op": "scale", "strength": 2.0, "layers": [0, 5]}])
    with pytest.raises(ValueError, match=r"^layers: \[0, 5\] reaches layer 5, but the model has 2"):
        build_plan(steps, "en", "de", neurons, tables)
