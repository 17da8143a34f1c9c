"""Shared fixtures: tiny random models built from a config, a tokenizer trained on the spot on
text of the repository (tests/repo_text.py), a local corpus of that text for the workflow runs,
and the real data subsets in ../shared/data (never copied into the repo), which only the tests of
the real-data loaders need."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
import repo_text
import torch
import yaml

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP spinning
# makes a 32-wide matmul take tens of milliseconds.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

SHARED_SKIP_REASON = "the shared evaluation data is not at"


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
    """The real data subsets (FLORES-200, XQuAD, Belebele, XNLI), or skip: only for the tests of
    the loaders and scorers on real data; everything else uses :func:`repo_corpus`."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_SKIP_REASON} {SHARED_DATA}")
    return SHARED_DATA


_REPO_CORPUS: list[Path] = []


def repo_corpus() -> Path:
    """A local corpus directory (``{flores}.txt``, one document per line, 200 lines for each of
    the 21 languages) of the repository's own text, written once per test session."""
    if not _REPO_CORPUS:
        directory = Path(tempfile.mkdtemp(prefix="langarith-repo-corpus-"))
        atexit.register(shutil.rmtree, directory, True)
        _REPO_CORPUS.append(repo_text.write_corpus(directory))
    return _REPO_CORPUS[0]


def repo_lines(lang: str, n: int) -> list[str]:
    """``n`` lines of the repository's text of ``lang`` (ISO 639-1), repeated when used up."""
    return repo_text.lines(lang, n)


def train_tokenizer(out_dir: Path, vocab_size: int = 600):
    """A byte-level BPE tokenizer trained on the repository's text of all 21 languages (the
    prompts and the built-in task sets; a second, no download, no ../shared)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lines = [line for lang in repo_text.LANGUAGES for line in repo_text.sentences(lang)]
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


SELECTION_LANGS = ["en", "de", "fr", "zh"]


@pytest.fixture(scope="session")
def pipeline_files(tmp_path_factory):
    """Activation statistics of ``SELECTION_LANGS`` shaped like the tiny models' MLPs (3 layers
    x 48 neurons) and residual streams (3 x 32), the LAPE outputs and a steering pack, written by
    the pipeline's functions."""
    import numpy as np

    from langarith.io.activations import ActivationStats, write_sites
    from langarith.io.pack import export_pack
    from langarith.io.selection import run_lape

    root = tmp_path_factory.mktemp("pack")
    rng = np.random.default_rng(7)
    paths, stats = [], []
    for k, lang in enumerate(SELECTION_LANGS):
        n = 1000 + 100 * k
        p = rng.beta(0.5, 3.0, size=(3, 48)) * 0.8
        p[:, k * 2 : k * 2 + 3] = rng.uniform(0.93, 0.99, size=(3, 3))  # language neurons
        act_sum = rng.normal(0.1 * k, 0.5, size=(3, 48)) * n
        s = ActivationStats(
            n_tokens=n,
            n_active=np.round(p * n).astype(np.int64),
            act_sum=act_sum,
            act_sq_sum=act_sum**2 / n + n,
        )
        residual_sum = rng.normal(0.2 * k, 1.0, size=(3, 32)) * n
        residual = ActivationStats(
            n_tokens=n,
            n_active=np.zeros((3, 32), dtype=np.int64),
            act_sum=residual_sum,
            act_sq_sum=residual_sum**2 / n + 4.0 * n,
        )
        path = root / f"{lang}.parquet"
        write_sites(path, {"mlp": s, "residual": residual})
        paths.append(path)
        stats.append(s)
    neurons, masks, summary = root / "sel.parquet", root / "sel.pt", root / "sel.json"
    run_lape(stats, SELECTION_LANGS, 0.1, 0.95, 0.95, neurons, masks, summary)
    pack_dir = root / "pack"
    meta = export_pack(neurons, summary, paths, SELECTION_LANGS, pack_dir, {"model": "tiny"})
    return {"neurons": neurons, "summary": summary, "stats": paths, "pack": pack_dir, "meta": meta}


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per skip reason with its count, and a line saying how many tests skipped only
    because ../shared/data is absent (the real-data loader tests)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    files: dict[str, set[str]] = {}
    for report in skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
        files.setdefault(reason, set()).add(report.nodeid.split("::")[0])
    terminalreporter.section("skipped, by reason")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:5d}  {reason}")
        terminalreporter.write_line(f"       in {', '.join(sorted(files[reason]))}")
    shared = sum(n for reason, n in reasons.items() if reason.startswith(SHARED_SKIP_REASON))
    if shared:
        terminalreporter.write_line(
            f"{shared} of {len(skipped)} skipped tests need the real data subsets in {SHARED_DATA} "
            "(the tests of the real-data loaders and scorers); a clone without ../shared runs "
            "everything else"
        )


@pytest.fixture(scope="session")
def tiny_dag(tmp_path_factory, tiny_llama_dir):
    """The whole tiny DAG, run once per session (tests/workflow_run.py); tests only read it."""
    from workflow_run import run_shared

    return run_shared(tmp_path_factory.mktemp("tiny-dag"), tiny_llama_dir)
