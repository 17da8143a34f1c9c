"""GPU check: the project's recording and steering on CUDA against a CPU reference, in one run.

For a tiny random model of each of the paper's families (Llama 3.1: llama3 rope scaling, GQA;
Mistral Nemo: head_dim ≠ hidden/heads; Cohere / Aya Expanse: logit_scale, tied embeddings,
parallel attention and MLP; Gemma 3), and Gemma 3 270M when ``resources/models/gemma3-270m``
exists (nothing is fetched):

- ``record``: ``record_token_stream`` in bfloat16 on the device against the same model in
  float64 on the CPU: per-neuron mean activation within 10 % of the mean |activation|, P(active)
  within 0.01 on average and 0.02 (or 5 tokens) per neuron;
- ``steer``: steered greedy generation (a set + add plan per row) in float32 on the device
  against the CPU: the share of identical outputs;
- ``gpu_slots``: ``langarith.workflow.gpu.claim_gpus(1)`` before CUDA starts, and the CUDA
  devices then visible;
- throughput of bf16 recording (tokens/s) and bf16 steered generation (new tokens/s).

Prints one JSON object on stdout (``ok`` says whether every check passed; exit status 1 if not).
``--dry-run``, or no CUDA, runs the same checks on the CPU, so CI can check this script.

    .venv/bin/python benchmarks/gpu_check.py            # on a GPU machine, about a minute
    .venv/bin/python benchmarks/gpu_check.py --dry-run  # anywhere
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GEMMA_DIR = REPO / "resources" / "models" / "gemma3-270m"

_TINY = {"hidden_size": 64, "intermediate_size": 96, "num_attention_heads": 4}
FAMILIES = {
    "llama": {
        "model_type": "llama",
        **_TINY,
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "rope_theta": 500000.0,
        "rope_scaling": {
            "factor": 8.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 64,
            "rope_type": "llama3",
        },
        "tie_word_embeddings": False,
    },
    "mistral": {
        "model_type": "mistral",
        **_TINY,
        "head_dim": 32,
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "sliding_window": None,
        "tie_word_embeddings": False,
    },
    "cohere": {
        "model_type": "cohere",
        **_TINY,
        "logit_scale": 0.125,
        "num_hidden_layers": 2,
        "num_key_value_heads": 1,
        "tie_word_embeddings": True,
    },
    "gemma3": {
        "model_type": "gemma3_text",
        **_TINY,
        "head_dim": 32,
        "num_hidden_layers": 3,
        "num_key_value_heads": 1,
        "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
        "sliding_window": 16,
        "query_pre_attn_scalar": 32,
    },
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def repo_prompts(n: int) -> list[str]:
    """``n`` forcing questions of the repository, one per language in file order, in the
    forcing prompt format."""
    from langarith.experiments.forcing import PROMPT_TEMPLATE

    with open(REPO / "resources" / "prompts" / "forcing.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    by_lang: dict[str, str] = {}
    for row in rows:
        by_lang.setdefault(row["lang"], row["question"])
    questions = list(by_lang.values())
    return [PROMPT_TEMPLATE.format(question=q) for q in (questions * n)[:n]]


def train_tokenizer(out_dir: Path):
    """A byte-level BPE tokenizer trained on the repository's prompts (a second, offline)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    lines = []
    for name in ("forcing.tsv", "calibration.tsv"):
        with open(REPO / "resources" / "prompts" / name, encoding="utf-8") as handle:
            lines += [row["question"] for row in csv.DictReader(handle, delimiter="\t")]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<pad>", "<bos>", "<eos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(lines, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    fast.add_bos_token = True
    fast.save_pretrained(out_dir)
    return fast


def tiny_model(family: str, tokenizer):
    import torch
    import transformers

    config = transformers.AutoConfig.for_model(
        **FAMILIES[family],
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():  # wider activations than the default init: neurons fire differently
        for name, param in model.named_parameters():
            if "gate_proj" in name or "up_proj" in name:
                param.normal_(0.0, 0.5)
    return model


def random_plans(model, n: int, seed: int = 0):
    """A deactivate + add plan per row: ``set`` 0 on 5 % and ``add`` on 5 % of each layer."""
    from langarith.core.plans import NeuronOp
    from langarith.model.sites import find_sites

    sites = find_sites(model)
    rng = np.random.default_rng(seed)
    k = max(1, sites.width // 20)
    plans = []
    for _ in range(n):
        plan = []
        for layer in range(len(sites.modules)):
            idx = rng.choice(sites.width, size=2 * k, replace=False)
            plan.append(NeuronOp("set", layer, np.sort(idx[:k]), np.zeros(k)))
            plan.append(NeuronOp("add", layer, np.sort(idx[k:]), rng.normal(0, 1.0, k)))
        plans.append(plan)
    return plans


def check_family(name, model, tokenizer, device, args) -> dict:
    import torch

    from langarith.model.generation import generate
    from langarith.model.recording import record_token_stream

    vocab = model.config.vocab_size
    stream = np.random.default_rng(1).integers(4, vocab, size=args.tokens)
    chunk = min(args.chunk, args.tokens)
    bos = tokenizer.bos_token_id
    result: dict = {"layers": model.config.num_hidden_layers}

    def record(m):
        return record_token_stream(m, stream, chunk, args.batch, bos_token_id=bos, progress=False)

    reference = record(model.to("cpu", torch.float64))
    fast = model.to(device, torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    stats = record(fast)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    scale = np.abs(reference.act_mean).mean() + 1e-12
    mean_err = float(np.abs(stats.act_mean - reference.act_mean).max() / scale)
    p_diff = np.abs(stats.p_active - reference.p_active)
    # bf16 flips the sign of activations near 0: a few tokens per neuron, rarely many
    p_ok = p_diff.mean() < 0.01 and p_diff.max() <= max(0.02, 5 / stats.n_tokens)
    result["record"] = {
        "tokens": int(stats.n_tokens),
        "act_mean_max_err_over_mean_abs": round(mean_err, 4),
        "p_active_max_diff": round(float(p_diff.max()), 4),
        "p_active_mean_diff": round(float(p_diff.mean()), 5),
        "ok": bool(stats.n_tokens == reference.n_tokens and mean_err < 0.1 and p_ok),
        "bf16_tokens_per_s": round(stats.n_tokens / seconds, 1),
    }

    prompts = repo_prompts(args.prompts)
    plans = random_plans(fast, len(prompts))
    options = dict(max_new_tokens=args.new_tokens, batch_size=len(prompts), progress=False)
    cpu_out = generate(model.to("cpu", torch.float32), tokenizer, prompts, plans, **options)
    dev_out = generate(model.to(device, torch.float32), tokenizer, prompts, plans, **options)
    same = sum(a == b for a, b in zip(cpu_out, dev_out))
    result["steer"] = {
        "identical_outputs": f"{same}/{len(prompts)}",
        "ok": same >= 0.9 * len(prompts),
    }
    bf16 = model.to(device, torch.bfloat16)
    fixed = dict(options, stop_strings=())
    start = time.perf_counter()
    generate(bf16, tokenizer, prompts, plans, **fixed)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result["steer"]["bf16_new_tokens_per_s_at_most"] = round(
        len(prompts) * args.new_tokens / seconds, 1
    )
    log(f"{name}: {json.dumps(result)}")
    return result


def gpu_slots(dry_run: bool) -> dict:
    """Claim one slot before CUDA starts; report what CUDA then sees."""
    from langarith.workflow.gpu import claim_gpus

    lock_dir = tempfile.mkdtemp(prefix="langarith-gpu-check-")
    claim = claim_gpus(1, pool=None if not dry_run else ("0",), lock_dir=lock_dir, timeout=10)
    import torch

    devices = []
    if torch.cuda.is_available() and not dry_run:
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "claimed": list(getattr(claim, "devices", ()) or ()),
        "source": getattr(claim, "source", None),
        "cuda_devices": devices,
        "ok": dry_run or len(devices) == 1,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="the same checks on the CPU")
    parser.add_argument("--tokens", type=int, default=16384, help="recorded tokens per model")
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args(argv)
    began = time.perf_counter()
    slots = gpu_slots(args.dry_run)  # before CUDA initialises

    import torch

    dry_run = args.dry_run or not torch.cuda.is_available()
    device = torch.device("cpu" if dry_run else "cuda")
    if dry_run:
        torch.set_num_threads(min(2, torch.get_num_threads()))
    out: dict = {"device": str(device), "dry_run": dry_run, "gpu_slots": slots, "models": {}}
    if not dry_run:
        out["cuda"] = {"name": torch.cuda.get_device_name(0), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = train_tokenizer(Path(tmp))
        for family in args.families:
            model = tiny_model(family, tokenizer)
            out["models"][f"tiny-{family}"] = check_family(family, model, tokenizer, device, args)
    if (GEMMA_DIR / "langarith_model.json").is_file():
        from langarith.model.loading import load_model

        loaded = load_model(GEMMA_DIR, dtype="float32", device="cpu")
        out["models"]["gemma3-270m"] = check_family(
            "gemma3-270m", loaded.model, loaded.tokenizer, device, args
        )
    else:
        out["models"]["gemma3-270m"] = {"skipped": f"{GEMMA_DIR} is not prepared"}
    checks = [slots["ok"]] + [
        m[k]["ok"] for m in out["models"].values() for k in ("record", "steer") if k in m
    ]
    out["ok"] = all(checks)
    out["seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(out, indent=2))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
