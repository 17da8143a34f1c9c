"""Shared fixtures: tiny random models built from a config, a tokenizer trained on the spot,
and the real data subsets in ../shared/data (never copied into the repo)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import yaml

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP spinning
# makes a 32-wide matmul take tens of milliseconds.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

TOKENIZER_LANGS = ("eng_Latn", "deu_Latn", "fra_Latn", "zho_Hans", "rus_Cyrl", "spa_Latn")


def write_config(workdir: Path, config: dict) -> Path:
    """``config`` as ``workdir/config.yaml`` (the directory is made if missing)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_argv(
    workdir: Path, configfile: Path, *args: str, targets: Sequence[str] = ()
) -> list[str]:
    """``python -m snakemake`` on the repository's Snakefile, run in ``workdir`` on
    ``configfile`` with 2 cores. ``targets`` come first: an option that takes several values
    (``--resources``, ``--set-threads``) would swallow targets placed after it."""
    return [
        sys.executable, "-m", "snakemake", *targets,
        "-s", str(REPO / "Snakefile"), "-d", str(workdir),
        "--configfile", str(configfile), "--cores", "2", *args,
    ]  # fmt: skip


def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared evaluation data is not at {SHARED_DATA}")
    return SHARED_DATA


def train_tokenizer(out_dir: Path, vocab_size: int = 600):
    """A byte-level BPE tokenizer trained on FLORES sentences (a few seconds, no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lines = []
    for code in TOKENIZER_LANGS:
        path = shared_data() / "flores200_devtest" / f"{code}.txt"
        lines += path.read_text(encoding="utf-8").splitlines()[:200]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(lines, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
    )
    fast.add_bos_token = True
    fast.save_pretrained(out_dir)
    return fast


def tiny_config(arch: str, vocab_size: int):
    import transformers

    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    if arch == "llama":
        return transformers.LlamaConfig(**common)
    if arch == "gemma3":
        return transformers.Gemma3TextConfig(**common, head_dim=8, sliding_window=16)
    raise ValueError(arch)


def build_tiny_model(out_dir: Path, arch: str = "llama", seed: int = 0) -> Path:
    """Save a tiny random causal LM of family ``arch`` with a trained tokenizer to ``out_dir``."""
    import torch
    import transformers

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(out_dir)
    torch.manual_seed(seed)
    config = tiny_config(arch, len(tokenizer))
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # wider activations than the default init: neurons fire differently
        for name, param in model.named_parameters():
            if "gate_proj" in name or "up_proj" in name:
                param.normal_(0.0, 0.5)
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gemma3"), "gemma3")


def load_tiny(path: Path):
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    return model, tokenizer


@pytest.fixture(scope="session")
def tiny_dag(tmp_path_factory, tiny_llama_dir):
    """The whole tiny DAG, run once per session (tests/workflow_run.py); tests only read it."""
    from workflow_run import run_shared

    return run_shared(tmp_path_factory.mktemp("tiny-dag"), tiny_llama_dir)
