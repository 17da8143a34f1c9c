"""Benchmark: float32 against bfloat16 on this machine, as a fraction of its own matmul roofline.

One run measures, in one process and interleaved so that a busy machine loads both alike:

- ``matmul_gflops``: ``F.linear`` at the decoder's own shapes (``--chunk`` tokens × hidden →
  intermediate, and intermediate → hidden), float32 and bfloat16, ``--threads`` threads, the
  best of 5 rounds of ~8 GFLOP each: the roofline the model can at best reach on this CPU in
  that dtype;
- ``body``: the decoder body (``model.base_model``, no LM head, no hooks) on ``--batch`` rows of
  ``--chunk`` tokens: tokens/s and the FLOP rate it reaches (``2 × linear weights`` per token
  plus the attention products), as a fraction of the matmul roofline of the same dtype (the
  higher of the rate measured at the start and the one measured again right after the body);
- ``recording``: ``langarith.model.recording.record_token_stream`` (the workflow's recording:
  hooks and float64 statistics included) on ``--tokens`` tokens, tokens/s;
- ``steered_generation``: ``model.generate`` under ``langarith.model.steering.steer`` with a
  per-row plan (``set`` on 2.5 % and ``add`` on 2.5 % of the neurons of every layer), one batch
  of ``--prompts`` random prompts of 24 tokens, exactly ``--new-tokens`` greedy tokens each,
  new tokens/s.

Model: ``--model-dir`` (a prepared model directory, default the workflow's
``resources/models/gemma3-270m``), else a tiny random Gemma 3 (the figures then say little about
a real model). Every figure is the median of ``--repeats`` rounds after a warm-up round. Also
reported: what ``dtype: auto`` resolves to here and why, and the load average before and after.

Prints one JSON object on stdout; progress goes to stderr.

    .venv/bin/python benchmarks/dtype.py --model-dir /path/to/resources/models/gemma3-270m
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# the generation benchmark's plans (a per-row set 2.5 % + add 2.5 % on every layer)
from generate import random_plans  # benchmarks/ is on sys.path when a benchmark runs

REPO = Path(__file__).resolve().parents[1]
GEMMA_DIR = REPO / "resources" / "models" / "gemma3-270m"
DTYPES = ("float32", "bfloat16")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tiny_model():
    import transformers

    config = transformers.Gemma3TextConfig(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=32,
        sliding_window=64,
        max_position_embeddings=1024,
    )
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).eval()


def load(model_dir: Path | None, dtype: str):
    if model_dir is None:
        return tiny_model().to(getattr(torch, dtype)).requires_grad_(False)
    from langarith.model.loading import load_model

    return load_model(model_dir, dtype=dtype, device="cpu").model


def text_config(model):
    config = model.config
    return getattr(config, "text_config", None) or config


def body_flops_per_token(model, context: int) -> float:
    """2 × the decoder layers' linear weights, plus QKᵀ and AV at an average ``context / 2``."""
    weights = sum(
        module.weight.numel()
        for name, module in model.base_model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}"
    )
    cfg = text_config(model)
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    attention = 2 * 2 * heads * head_dim * (context / 2) * cfg.num_hidden_layers
    return 2.0 * weights + attention


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def matmul_rates(
    hidden: int, inter: int, rows: int, repeats: int, dtypes=DTYPES
) -> dict[str, dict]:
    out = {}
    for dtype in dtypes:
        dt = getattr(torch, dtype)
        x_up, w_up = torch.randn(rows, hidden, dtype=dt), torch.randn(inter, hidden, dtype=dt)
        x_down, w_down = torch.randn(rows, inter, dtype=dt), torch.randn(hidden, inter, dtype=dt)
        flops = 2 * rows * hidden * inter
        n = max(1, int(8e9 // flops))  # about 8 GFLOP per timing

        def run(x=x_up, w=w_up, n=n):
            for _ in range(n):
                F.linear(x, w)

        def run_down(x=x_down, w=w_down, n=n):
            for _ in range(n):
                F.linear(x, w)

        up = min(timed(run, repeats))  # a roofline: the best of the rounds, not the median
        down = min(timed(run_down, repeats))
        out[dtype] = {
            f"{rows}x{hidden} @ {hidden}x{inter}": round(n * flops / up / 1e9, 1),
            f"{rows}x{inter} @ {inter}x{hidden}": round(n * flops / down / 1e9, 1),
            "both": round(2 * n * flops / (up + down) / 1e9, 1),
        }
        log(f"matmul {dtype}: {out[dtype]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", type=Path, default=None, help=f"default {GEMMA_DIR}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=512, help="tokens per row")
    parser.add_argument("--batch", type=int, default=2, help="rows per body forward")
    parser.add_argument("--tokens", type=int, default=1024, help="tokens recorded per round")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from langarith.model.dtypes import dtype_choice
    from langarith.model.recording import record_token_stream
    from langarith.model.sites import find_sites
    from langarith.model.steering import steer

    torch.set_num_threads(args.threads)
    model_dir = args.model_dir or GEMMA_DIR
    if not (model_dir / "langarith_model.json").is_file():
        log(f"no prepared model at {model_dir}: a tiny random Gemma 3")
        model_dir = None
    load_before = os.getloadavg()
    models = {dtype: load(model_dir, dtype) for dtype in DTYPES}
    cfg = text_config(models["float32"])
    vocab = cfg.vocab_size
    rng = np.random.default_rng(0)
    stream = rng.integers(10, vocab, size=args.tokens).astype(np.int64)
    body_ids = torch.from_numpy(rng.integers(10, vocab, size=(args.batch, args.chunk)))
    prompts = torch.from_numpy(rng.integers(10, vocab, size=(args.prompts, 24)))

    result: dict = {
        "model": str(model_dir) if model_dir else "tiny random gemma3 (4 layers, 128 x 512)",
        "hidden_x_intermediate": [cfg.hidden_size, cfg.intermediate_size],
        "threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "dtype_auto_here": dict(zip(("resolves_to", "why"), dtype_choice("auto", "cpu"))),
        "matmul_gflops": matmul_rates(cfg.hidden_size, cfg.intermediate_size, args.chunk, 5),
    }
    flops_token = body_flops_per_token(models["float32"], args.chunk)
    body, recording, generation = {}, {}, {}
    for dtype in DTYPES:
        model = models[dtype]
        sites = find_sites(model)
        plans = random_plans(args.prompts, sites.n_layers, sites.width)

        @torch.inference_mode()
        def forward(model=model):
            model.base_model(input_ids=body_ids, use_cache=False)

        def record(model=model):
            record_token_stream(model, stream, args.chunk, args.batch, 2, progress=False)

        @torch.inference_mode()
        def generate(model=model, plans=plans):
            with steer(model, plans):
                model.generate(
                    input_ids=prompts,
                    attention_mask=torch.ones_like(prompts),
                    max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                )

        t_body = statistics.median(timed(forward, args.repeats))
        # the roofline again, right after the body: on a busy machine the rate moves, and the
        # higher of the two is the better estimate of what the hardware can do
        again = matmul_rates(cfg.hidden_size, cfg.intermediate_size, args.chunk, 5, (dtype,))
        rates = result["matmul_gflops"][dtype]
        rates["both_after_body"] = again[dtype]["both"]
        roofline = max(rates["both"], rates["both_after_body"])
        tps = body_ids.numel() / t_body
        gflops = tps * flops_token / 1e9
        body[dtype] = {
            "tokens_per_s": round(tps, 1),
            "gflops": round(gflops, 1),
            "roofline_gflops": roofline,
            "fraction_of_matmul_roofline": round(gflops / roofline, 3),
        }
        log(f"body {dtype}: {body[dtype]}")
        t_rec = statistics.median(timed(record, args.repeats))
        recording[dtype] = {"tokens_per_s": round(len(stream) / t_rec, 1), "s": round(t_rec, 2)}
        log(f"recording {dtype}: {recording[dtype]}")
        t_gen = statistics.median(timed(generate, args.repeats))
        new = args.prompts * args.new_tokens
        generation[dtype] = {"new_tokens_per_s": round(new / t_gen, 1), "s": round(t_gen, 2)}
        log(f"steered generation {dtype}: {generation[dtype]}")
    result.update(
        body={"rows_x_tokens": [args.batch, args.chunk], **body},
        body_flops_per_token=round(flops_token),
        recording={"tokens": args.tokens, **recording},
        steered_generation={
            "prompts": args.prompts,
            "prompt_tokens": 24,
            "new_tokens": args.new_tokens,
            **generation,
        },
        bf16_over_fp32={
            "matmul": round(
                body["bfloat16"]["roofline_gflops"] / body["float32"]["roofline_gflops"], 2
            ),
            "body": round(body["bfloat16"]["tokens_per_s"] / body["float32"]["tokens_per_s"], 2),
            "recording": round(
                recording["bfloat16"]["tokens_per_s"] / recording["float32"]["tokens_per_s"], 2
            ),
            "steered_generation": round(
                generation["bfloat16"]["new_tokens_per_s"]
                / generation["float32"]["new_tokens_per_s"],
                2,
            ),
        },
        target={
            "bf16 body >= 40 % of the bf16 matmul roofline": body["bfloat16"][
                "fraction_of_matmul_roofline"
            ]
            >= 0.4
        },
        repeats=args.repeats,
        load_average_before=[round(v, 2) for v in load_before],
        load_average_after=[round(v, 2) for v in os.getloadavg()],
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
