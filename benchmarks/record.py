"""Benchmark: tokens/s of langarith recording against a bare forward and against nnsight.

On the same token batches, per model:

- ``bare``: the decoder body (``model.base_model``) without LM head and without hooks;
- ``record``: ``langarith.model.recording.record_token_stream`` (hooks + statistics, no LM head);
- ``nnsight``: the same statistics with nnsight's tracing API (``nnsight.NNsight(model)``,
  ``.trace(input_ids=...)``, reductions of ``layer.mlp.act_fn.output`` saved per layer), which
  runs the whole model including the LM head, as a user of nnsight would.

Conditions are interleaved (bare, record, nnsight, bare, ...) after a warm-up round so drift
of the machine's load hits all three alike. Reported: the median of the repetitions, the best
(minimum) repetition (noise from other processes only ever adds time), and process-CPU-time
ratios (with several threads, CPU time includes OpenMP threads spinning while they wait for a
descheduled sibling, so on a loaded machine it overstates work). Peak RSS (``VmHWM``) of
recording 1x and 10x the token count is measured in a fresh subprocess per condition.

Prints one JSON object on stdout; progress goes to stderr. Not a test: run by hand, e.g.

    .venv/bin/python benchmarks/record.py --tokens 4096 --models gemma3-270m,tiny-llama
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from langarith.model.recording import chunk_batches, record_token_stream

REPO = Path(__file__).resolve().parents[1]
GEMMA_DIR = REPO / "resources" / "models" / "gemma3-270m"
MODELS = ("gemma3-270m", "tiny-llama")
CONDITIONS = ("bare", "record", "nnsight")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load(name: str):
    """The model ``name`` in eval mode, or ``None`` with a message if it is not available."""
    if name == "gemma3-270m":
        if not (GEMMA_DIR / "langarith_model.json").is_file():
            log(f"skipping gemma3-270m: no prepared model at {GEMMA_DIR} (run prepare_model)")
            return None
        from langarith.model.loading import load_model

        return load_model(GEMMA_DIR, dtype="float32", device="cpu").model
    if name == "tiny-llama":
        import transformers

        config = transformers.LlamaConfig(
            vocab_size=32000,
            hidden_size=256,
            intermediate_size=1024,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=4096,
        )
        torch.manual_seed(0)
        model = transformers.AutoModelForCausalLM.from_config(config).eval()
        return model.requires_grad_(False)
    raise SystemExit(f"unknown model {name!r} (choose from {', '.join(MODELS)})")


def token_stream(model, n_tokens: int, seed: int = 0) -> np.ndarray:
    vocab = model.config.get_text_config().vocab_size
    return np.random.default_rng(seed).integers(4, vocab, size=n_tokens, dtype=np.int64)


@torch.inference_mode()
def run_bare(model, stream: np.ndarray, chunk: int, batch: int) -> None:
    body = model.base_model
    for rows in chunk_batches(stream, chunk, batch):
        body(input_ids=torch.from_numpy(rows), use_cache=False)


def run_record(model, stream: np.ndarray, chunk: int, batch: int) -> None:
    record_token_stream(model, stream, chunk, batch, progress=False)


def nnsight_runner(model) -> Callable[[object, np.ndarray, int, int], None]:
    """Per-layer count/sum/sum-of-squares with nnsight, accumulated in float64 like langarith."""
    import nnsight

    traced = nnsight.NNsight(model)
    layers = traced.model.layers

    @torch.inference_mode()
    def run(_model, stream: np.ndarray, chunk: int, batch: int) -> None:
        totals = None
        for rows in chunk_batches(stream, chunk, batch):
            saved: list = []
            with traced.trace(input_ids=torch.from_numpy(rows), use_cache=False):
                for layer in layers:
                    a = layer.mlp.act_fn.output
                    saved.append(
                        (
                            (a > 0).sum((0, 1)).save(),
                            a.sum((0, 1), dtype=torch.float32).save(),
                            a.square().sum((0, 1), dtype=torch.float32).save(),
                        )
                    )
            stacked = [torch.stack([s[k] for s in saved]).double() for k in range(3)]
            totals = stacked if totals is None else [t + s for t, s in zip(totals, stacked)]

    return run


def measure(model, stream, chunk: int, batch: int, repeats: int, warmup: int) -> dict:
    """Median wall and CPU seconds of each condition, interleaved."""
    runners = {"bare": run_bare, "record": run_record, "nnsight": nnsight_runner(model)}
    wall: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    cpu: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    for rep in range(warmup + repeats):
        for condition in CONDITIONS:
            w0, c0 = time.perf_counter(), time.process_time()
            runners[condition](model, stream, chunk, batch)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            label = "warm-up" if rep < warmup else f"rep {rep - warmup + 1}/{repeats}"
            log(f"  {label} {condition:8s} {w:7.2f} s wall {c:7.2f} s cpu")
            if rep >= warmup:
                wall[condition].append(w)
                cpu[condition].append(c)
    return {
        "wall": {c: statistics.median(v) for c, v in wall.items()},
        "wall_best": {c: min(v) for c, v in wall.items()},
        "cpu": {c: statistics.median(v) for c, v in cpu.items()},
        "wall_all": wall,
    }


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    Reads ``VmHWM`` from ``/proc/self/status``: on Linux ``ru_maxrss`` of a subprocess also
    counts the image of the parent it was forked from (the maximum is carried over ``exec``),
    so a child of a process holding a model would report the parent's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(name: str, n_tokens: int, chunk: int, batch: int) -> None:
    """(subprocess) Load, record ``n_tokens``, print peak RSS in MiB as JSON.

    All weights are read once before the baseline is taken: safetensors weights are memory
    mapped, and otherwise the embedding rows of each new token id would page in during
    recording (Gemma's 671 MB embedding table), growing RSS with the token count although
    nothing accumulates.
    """
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    model = load(name)
    with torch.no_grad():  # page in weights a lazy (mmap) load left on disk, e.g. unused
        for tensor in (*model.parameters(), *model.buffers()):  # embedding rows
            tensor.sum()
    loaded = peak_rss_mib()
    stats = record_token_stream(model, token_stream(model, n_tokens), chunk, batch, progress=False)
    peak = peak_rss_mib()
    print(json.dumps({"loaded_mib": loaded, "peak_mib": peak, "n_tokens": stats.n_tokens}))


def peak_rss(name: str, n_tokens: int, chunk: int, batch: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--rss-child", name, "--tokens", str(n_tokens)]
    command += ["--chunk", str(chunk), "--batch", str(batch)]
    env = {**os.environ, "BENCH_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"RSS child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def versions() -> dict:
    import transformers

    try:
        import nnsight

        nnsight_version = nnsight.__version__
    except ImportError:  # pragma: no cover - the benchmark needs it
        nnsight_version = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "nnsight": nnsight_version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=4096, help="tokens per timed run")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated")
    parser.add_argument("--chunk", type=int, default=512, help="tokens per sequence")
    parser.add_argument("--batch", type=int, default=2, help="sequences per forward")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-rss", action="store_true", help="skip the RSS subprocesses")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.tokens, args.chunk, args.batch)
        return
    torch.set_num_threads(args.threads)
    result: dict = {
        "settings": {
            "tokens": args.tokens,
            "chunk_tokens": args.chunk,
            "batch_size": args.batch,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "threads": args.threads,
            "device": "cpu",
            "dtype": "float32",
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": versions(),
        "models": {},
    }
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown} (choose from {', '.join(MODELS)})")
    for name in names:
        model = load(name)
        if model is None:
            result["models"][name] = {"skipped": "model not prepared"}
            continue
        log(f"{name}: timing {args.tokens} tokens x {args.repeats} repeats")
        stream = token_stream(model, args.tokens)
        timing = measure(model, stream, args.chunk, args.batch, args.repeats, args.warmup)
        wall, best, cpu = timing["wall"], timing["wall_best"], timing["cpu"]
        entry: dict = {
            "tokens_per_s": {c: round(args.tokens / wall[c], 1) for c in CONDITIONS},
            "record_vs_bare": round(wall["bare"] / wall["record"], 3),
            "record_vs_nnsight": round(wall["nnsight"] / wall["record"], 3),
            "best_of_repeats": {
                "tokens_per_s": {c: round(args.tokens / best[c], 1) for c in CONDITIONS},
                "record_vs_bare": round(best["bare"] / best["record"], 3),
                "record_vs_nnsight": round(best["nnsight"] / best["record"], 3),
            },
            "cpu_time_ratios": {
                "record_vs_bare": round(cpu["bare"] / cpu["record"], 3),
                "record_vs_nnsight": round(cpu["nnsight"] / cpu["record"], 3),
            },
            "wall_seconds": {c: [round(x, 3) for x in v] for c, v in timing["wall_all"].items()},
        }
        del model
        if not args.no_rss:
            log(f"{name}: peak RSS at 1x and 10x {args.tokens} tokens (subprocesses)")
            one = peak_rss(name, args.tokens, args.chunk, args.batch, args.threads)
            ten = peak_rss(name, 10 * args.tokens, args.chunk, args.batch, args.threads)
            entry["peak_rss_mib"] = {
                "after_load_1x": round(one["loaded_mib"], 1),
                "record_1x": round(one["peak_mib"], 1),
                "record_10x": round(ten["peak_mib"], 1),
                "ratio_10x_vs_1x": round(ten["peak_mib"] / one["peak_mib"], 3),
            }
        entry["targets"] = {
            "record_vs_bare>=0.97": entry["record_vs_bare"] >= 0.97,
            "record_vs_nnsight>=2.5": entry["record_vs_nnsight"] >= 2.5,
        }
        if "peak_rss_mib" in entry:
            entry["targets"]["rss_10x<1.1*rss_1x"] = entry["peak_rss_mib"]["ratio_10x_vs_1x"] < 1.1
        result["models"][name] = entry
    result["settings"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
