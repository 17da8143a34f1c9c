"""The repositories of the local hub: tiny random models with the shape-defining configuration
of the paper's four architectures, and dataset repositories laid out as the real ones are.

Models (hidden sizes tiny, weights random, tokenizer trained on the repository's text):

* ``meta-llama/Llama-3.1-8B`` (gated): llama3 rope scaling, GQA 4:1, sharded
  ``model-*.safetensors`` + index, and Meta's ``original/`` checkpoint beside them;
* ``mistralai/Mistral-Nemo-Base-2407``: ``head_dim`` 16 ≠ hidden/heads = 8, sharded
  ``model-*.safetensors`` + index *and* a ``consolidated.safetensors`` (Mistral's own format,
  as big again) with ``params.json``;
* ``CohereLabs/aya-expanse-8b``: Cohere (``logit_scale``, tied embeddings, parallel attention
  and MLP, LayerNorm), float16;
* ``CohereLabs/aya-expanse-32b``: Cohere again, with the 32B's ``logit_scale`` and rope base,
  GQA 8:1 as in the 32B (64:8); its ``v1`` tag is a pinned older revision (``config/paper.yaml``
  names all four paper models, so the hub serves each under its own id);
* ``google/gemma-3-270m`` (gated): Gemma 3 text, ``head_dim`` ≠ hidden/heads, sliding and full
  attention layers, one ``model.safetensors``; its ``v1`` tag is a pinned older revision.

Datasets, a few rows each of the repository's own text (resources/) in the real schemas:

* ``uonlp/CulturaX`` (gated): ``<lang>/<lang>_part_00000.parquet``, configs by ISO code;
* ``openlanguagedata/flores_plus`` (gated): ``devtest/<code>.parquet`` and ``dev/<code>.parquet``,
  one config per FLORES+ code (``cmn_Hans`` for Chinese);
* ``google/xquad``: ``xquad.<lang>/validation-00000-of-00001.parquet``;
* ``facebook/belebele``: ``data/<flores>.jsonl`` (JSON lines), split ``test``;
* ``facebook/xnli``: ``<lang>/test-00000-of-00001.parquet`` (label as a class label).
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
from pathlib import Path

import repo_text

from localhub.server import LocalHub

LLAMA = "meta-llama/Llama-3.1-8B"
MISTRAL = "mistralai/Mistral-Nemo-Base-2407"
AYA = "CohereLabs/aya-expanse-8b"
AYA_32B = "CohereLabs/aya-expanse-32b"
GEMMA = "google/gemma-3-270m"
MODELS = (LLAMA, MISTRAL, AYA, GEMMA)  # the four architectures
PAPER_MODELS = (LLAMA, MISTRAL, AYA, AYA_32B)  # the models of config/paper.yaml
PINNED = {GEMMA: "v1", AYA_32B: "v1"}  # a tag on an older commit; main is a newer one
GATED = {LLAMA, GEMMA, "uonlp/CulturaX", "openlanguagedata/flores_plus"}

_TINY = {"hidden_size": 32, "intermediate_size": 48, "num_attention_heads": 4}

CONFIGS: dict[str, dict] = {
    LLAMA: {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        **_TINY,
        "initializer_range": 0.02,
        "max_position_embeddings": 131072,
        "mlp_bias": False,
        "model_type": "llama",
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,  # GQA, 4 query heads per key/value head as in the 8B (32:8)
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 8.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192,
            "rope_type": "llama3",
        },
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
    },
    MISTRAL: {
        "architectures": ["MistralForCausalLM"],
        "attention_dropout": 0.0,
        "head_dim": 16,  # ≠ hidden_size / num_attention_heads = 8, as 128 ≠ 5120 / 32 in Nemo
        "hidden_act": "silu",
        **_TINY,
        "initializer_range": 0.02,
        "max_position_embeddings": 1024000,
        "model_type": "mistral",
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rms_norm_eps": 1e-05,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
    },
    AYA: {
        "architectures": ["CohereForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        **_TINY,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-05,
        "logit_scale": 0.125,
        "max_position_embeddings": 8192,
        "model_type": "cohere",
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rope_theta": 10000,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "use_cache": True,
        "use_qk_norm": False,
    },
    AYA_32B: {
        "architectures": ["CohereForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_attention_heads": 8,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-05,
        "logit_scale": 0.0625,
        "max_position_embeddings": 8192,
        "model_type": "cohere",
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rope_theta": 4000000,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
        "use_cache": True,
        "use_qk_norm": False,
    },
    GEMMA: {
        "_sliding_window_pattern": 6,
        "architectures": ["Gemma3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        "head_dim": 16,  # ≠ hidden / heads, as 256 ≠ 640 / 4 in the 270M
        "hidden_activation": "gelu_pytorch_tanh",
        **_TINY,
        "initializer_range": 0.02,
        "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
        "max_position_embeddings": 32768,
        "model_type": "gemma3_text",
        "num_hidden_layers": 3,
        "num_key_value_heads": 1,
        "query_pre_attn_scalar": 16,
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": 16,
        "torch_dtype": "bfloat16",
        "use_bidirectional_attention": False,
        "use_cache": True,
    },
}


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def build_model(repo_id: str, tokenizer_dir: Path, seed: int = 0) -> dict[str, bytes]:
    """The files of the tiny ``repo_id``: weights (as the real repository shards them),
    ``config.json`` in the real repository's shape, the tokenizer, ``generation_config.json``."""
    import torch
    import transformers
    from safetensors.torch import save_file

    config_dict = copy.deepcopy(CONFIGS[repo_id])
    tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
    config_dict.update(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = transformers.AutoConfig.for_model(**config_dict)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # wider activations than the default init, as in conftest
        for name, param in model.named_parameters():
            if "gate_proj" in name or "up_proj" in name:
                param.normal_(0.0, 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        # sharded like the real repositories (Gemma 3 270M ships one file)
        shard = "1000GB" if repo_id == GEMMA else "40KB"
        model.save_pretrained(out, max_shard_size=shard)
        tokenizer.save_pretrained(out)
        (out / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
        files = _files(out)
        if repo_id == MISTRAL:  # Mistral's own format beside the transformers one
            native = {
                name.replace("model.layers.", "layers.").replace("model.", ""): t.contiguous()
                for name, t in model.state_dict().items()
            }
            save_file(native, str(out / "consolidated.safetensors"))
            files["consolidated.safetensors"] = (out / "consolidated.safetensors").read_bytes()
            files["params.json"] = json.dumps({"dim": 32, "n_layers": 2, "head_dim": 16}).encode()
            files["tekken.json"] = b'{"config": {"pattern": "", "num_vocab_tokens": 600}}'
        if repo_id == LLAMA:  # Meta's checkpoint, never needed by transformers
            files["original/consolidated.00.pth"] = b"\0" * 4096
            files["original/params.json"] = b'{"dim": 32}'
            files["original/tokenizer.model"] = b"\0" * 512
    files["README.md"] = f"---\nlicense: other\n---\n# {repo_id} (tiny, random)\n".encode()
    files[".gitattributes"] = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    return files


# -- datasets ------------------------------------------------------------------------------


def _parquet(rows: list[dict], schema=None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


def _card(configs: list[dict]) -> bytes:
    import yaml

    return ("---\n" + yaml.safe_dump({"configs": configs}, sort_keys=False) + "---\n").encode()


def _lang(code: str):
    return repo_text.language(code)


CULTURAX_LANGS = ("en", "de", "fr", "zh", "es")
CULTURAX_ROWS = 40  # documents per language


def culturax() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    configs = []
    for lang in CULTURAX_LANGS:
        texts = repo_text.lines(lang, CULTURAX_ROWS)
        rows = [
            {"text": t, "timestamp": "2021/01/01", "url": f"https://ex.org/{i}", "source": "mC4"}
            for i, t in enumerate(texts)
        ]
        files[f"{lang}/{lang}_part_00000.parquet"] = _parquet(rows)
        configs.append({"config_name": lang, "data_files": f"{lang}/*.parquet"})
    files["README.md"] = _card(configs)
    return files


FLORES_LANGS = ("en", "de", "fr", "zh", "es", "ru")


def flores_plus() -> dict[str, bytes]:
    """FLORES+: the built-in translation sentences (line-aligned), one config per code."""
    root = repo_text.TASK_SETS / "translation"
    files: dict[str, bytes] = {}
    configs = []
    for lang in FLORES_LANGS:
        entry = _lang(lang)
        code = entry.flores_plus
        iso3, script = code.split("_")
        lines = (root / f"{entry.flores}.txt").read_text(encoding="utf-8").splitlines()
        for split, part in (("dev", lines[:4]), ("devtest", lines[4:])):
            rows = [
                {
                    "id": i,
                    "iso_639_3": iso3,
                    "iso_15924": script,
                    "glottocode": "stan1293",
                    "text": text,
                    "url": f"https://example.org/{i}",
                    "domain": "wikinews",
                    "topic": "daily life",
                    "has_image": False,
                    "has_hyperlink": False,
                    "last_updated": "2.0",
                }
                for i, text in enumerate(part, start=1)
            ]
            files[f"{split}/{code}.parquet"] = _parquet(rows)
        configs.append(
            {
                "config_name": code,
                "data_files": [
                    {"split": "dev", "path": f"dev/{code}.parquet"},
                    {"split": "devtest", "path": f"devtest/{code}.parquet"},
                ],
            }
        )
    files["README.md"] = _card(configs)
    return files


def xquad() -> dict[str, bytes]:
    """XQuAD: the built-in QA sets, flattened to the hub's rows (answers as lists)."""
    files: dict[str, bytes] = {}
    configs = []
    for path in sorted((repo_text.TASK_SETS / "qa").glob("xquad.*.json")):
        lang = path.name.split(".")[1]
        rows = []
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    rows.append(
                        {
                            "id": qa["id"],
                            "context": paragraph["context"],
                            "question": qa["question"],
                            "answers": {
                                "text": [a["text"] for a in qa["answers"]],
                                "answer_start": [a["answer_start"] for a in qa["answers"]],
                            },
                        }
                    )
        files[f"xquad.{lang}/validation-00000-of-00001.parquet"] = _parquet(rows)
        configs.append(
            {
                "config_name": f"xquad.{lang}",
                "data_files": [{"split": "validation", "path": f"xquad.{lang}/validation-*"}],
            }
        )
    files["README.md"] = _card(configs)
    return files


def belebele() -> dict[str, bytes]:
    """Belebele: the built-in reading sets, one row per question in the original schema."""
    files: dict[str, bytes] = {}
    configs = []
    for path in sorted((repo_text.TASK_SETS / "reading").glob("*.jsonl")):
        code = path.stem
        rows = []
        for p, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            passage = json.loads(line)
            for q, item in enumerate(passage["items"], start=1):
                answers = item["answers"]
                row = {
                    "link": f"https://example.org/passage/{p}",
                    "question_number": q,
                    "flores_passage": passage["text"],
                    "question": item["question"],
                    **{f"mc_answer{k + 1}": a["text"] for k, a in enumerate(answers)},
                    "correct_answer_num": str(1 + [a["correct"] for a in answers].index(True)),
                    "dialect": code,
                    "ds": "2023-05-03",
                }
                rows.append(row)
        files[f"data/{code}.jsonl"] = "".join(
            json.dumps(r, ensure_ascii=False) + "\n" for r in rows
        ).encode()
        configs.append(
            {"config_name": code, "data_files": [{"split": "test", "path": f"data/{code}.jsonl"}]}
        )
    files["README.md"] = _card(configs)
    return files


def xnli() -> dict[str, bytes]:
    import pyarrow as pa

    files: dict[str, bytes] = {}
    configs = []
    names = ["entailment", "neutral", "contradiction"]
    schema = pa.schema(
        [("premise", pa.string()), ("hypothesis", pa.string()), ("label", pa.int64())]
    )
    for path in sorted((repo_text.TASK_SETS / "nli").glob("test.*.jsonl")):
        lang = path.name.split(".")[1]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        rows = [{k: r[k] for k in ("premise", "hypothesis", "label")} for r in rows]
        for split in ("test", "validation"):
            files[f"{lang}/{split}-00000-of-00001.parquet"] = _parquet(rows, schema)
        configs.append(
            {
                "config_name": lang,
                "data_files": [
                    {"split": "test", "path": f"{lang}/test-*"},
                    {"split": "validation", "path": f"{lang}/validation-*"},
                ],
            }
        )
    card = _card(configs).decode()
    features = {
        "dataset_info": [
            {
                "config_name": c["config_name"],
                "features": [
                    {"name": "premise", "dtype": "string"},
                    {"name": "hypothesis", "dtype": "string"},
                    {"name": "label", "dtype": {"class_label": {"names": dict(enumerate(names))}}},
                ],
            }
            for c in configs
        ]
    }
    import yaml

    card = card.removesuffix("---\n") + yaml.safe_dump(features, sort_keys=False) + "---\n"
    files["README.md"] = card.encode()
    return files


DATASETS = {
    "uonlp/CulturaX": culturax,
    "openlanguagedata/flores_plus": flores_plus,
    "google/xquad": xquad,
    "facebook/belebele": belebele,
    "facebook/xnli": xnli,
}


def populate(hub: LocalHub, workdir: Path) -> LocalHub:
    """Put every model and dataset repository on ``hub`` (``workdir`` for the tokenizer)."""
    from conftest import train_tokenizer

    tokenizer_dir = workdir / "tokenizer"
    train_tokenizer(tokenizer_dir)
    for repo_id in dict.fromkeys(MODELS + PAPER_MODELS):
        files = build_model(repo_id, tokenizer_dir)
        repo = hub.add_repo("model", repo_id, files, gated=repo_id in GATED)
        if repo_id in PINNED:  # a pinned older revision, tagged, then a newer main
            repo.refs[PINNED[repo_id]] = repo.refs["main"]
            newer = build_model(repo_id, tokenizer_dir, seed=1)
            hub.add_commit("model", repo_id, newer, ref="main")
    for repo_id, build in DATASETS.items():
        hub.add_repo("dataset", repo_id, build(), gated=repo_id in GATED)
    return hub
