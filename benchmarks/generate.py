"""Benchmark: tokens/s of steered vs unsteered generation, and of batching vs one prompt per call.

On Gemma 3 270M (the workflow's prepared model at ``resources/models/gemma3-270m``; skipped with
a message if absent), CPU, ``--threads`` torch threads (2), float32, the same prompts (the
first question of ``--prompts`` languages of ``resources/prompts/forcing.tsv`` in the forcing
format) and greedy decoding with repetition penalty 1.1:

- ``unsteered``: one batch of all prompts, no hooks;
- ``steered``: the same batch, every row with its own plan under ``langarith.model.steering.steer``
  (the shape of a deactivate-source + add-target plan: ``set`` on 2.5 % and ``add`` on 2.5 %
  of the neurons of every layer, random indices and values);
- ``loop``: one ``generate`` call per prompt (batch 1), no hooks.

Every run produces exactly ``--tokens`` new tokens per prompt (``min_new_tokens`` =
``max_new_tokens``, no stop strings), so tokens/s compare equal work. Conditions are
interleaved after a warm-up round and the median of ``--repeats`` rounds is reported, with
ratios from wall time and from process CPU time. Targets: steered / unsteered ≥ 0.95,
batched / loop ≥ 4.

Prints one JSON object on stdout; progress goes to stderr. Refuses to run (JSON with
``skipped``) while a ``snakemake`` process is running on the machine, unless ``--force``.

    .venv/bin/python benchmarks/generate.py --tokens 32 --prompts 16 --repeats 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
GEMMA_DIR = REPO / "resources" / "models" / "gemma3-270m"
CONDITIONS = ("unsteered", "steered", "loop")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def snakemake_running() -> bool:
    result = subprocess.run(["pgrep", "-f", "snakemake"], capture_output=True, text=True)
    own = {str(os.getpid())}
    return any(pid and pid not in own for pid in result.stdout.split())


def forcing_prompts(n: int) -> list[str]:
    from langarith.experiments.forcing import PROMPT_TEMPLATE

    with open(REPO / "resources" / "prompts" / "forcing.tsv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if r["question_idx"] == "0"]
    prompts = [PROMPT_TEMPLATE.format(question=r["question"]) for r in rows]
    return (prompts * (n // len(prompts) + 1))[:n]


def random_plans(n_rows: int, n_layers: int, width: int, seed: int = 0):
    from langarith.core.plans import NeuronOp

    rng = np.random.default_rng(seed)
    k = max(1, width // 40)  # 2.5 % of the neurons, twice
    plans = []
    for _ in range(n_rows):
        plan = []
        for layer in range(n_layers):
            idx = rng.choice(width, 2 * k, replace=False)
            plan.append(NeuronOp("set", layer, np.sort(idx[:k]), np.zeros(k)))
            plan.append(NeuronOp("add", layer, np.sort(idx[k:]), rng.normal(0, 0.1, k)))
        plans.append(plan)
    return plans


@torch.inference_mode()
def run(model, tokenizer, prompts, plans, batch_size: int, tokens: int) -> int:
    """Generate exactly ``tokens`` new tokens per prompt; return the number generated."""
    from langarith.model.generation import prepare_tokenizer
    from langarith.model.steering import steer

    prepare_tokenizer(tokenizer)
    total = 0
    for start in range(0, len(prompts), batch_size):
        rows = prompts[start : start + batch_size]
        enc = tokenizer(rows, return_tensors="pt", padding=True)
        row_plans = plans[start : start + batch_size] if plans is not None else [[]]
        with steer(model, row_plans):
            out = model.generate(
                **enc,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                repetition_penalty=1.1,
                pad_token_id=tokenizer.pad_token_id,
            )
        total += (out.shape[1] - enc["input_ids"].shape[1]) * len(rows)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=32, help="new tokens per prompt")
    parser.add_argument("--prompts", type=int, default=16, help="prompts (= the batch size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="run even if snakemake is running")
    args = parser.parse_args()

    if not (GEMMA_DIR / "langarith_model.json").is_file():
        print(json.dumps({"skipped": f"no prepared model at {GEMMA_DIR} (run prepare_model)"}))
        return
    if snakemake_running() and not args.force:
        print(json.dumps({"skipped": "a snakemake process is running (use --force to override)"}))
        return
    torch.set_num_threads(args.threads)
    from langarith.model.loading import load_model
    from langarith.model.sites import find_sites

    loaded = load_model(GEMMA_DIR, dtype="float32", device="cpu")
    model, tokenizer = loaded.model, loaded.tokenizer
    sites = find_sites(model)
    prompts = forcing_prompts(args.prompts)
    plans = random_plans(len(prompts), sites.n_layers, sites.width)
    setups = {
        "unsteered": (None, len(prompts)),
        "steered": (plans, len(prompts)),
        "loop": (None, 1),
    }
    wall: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    cpu: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    generated: dict[str, int] = {}
    load_before = os.getloadavg()
    for round_ in range(args.repeats + 1):  # round 0 warms up
        for condition in CONDITIONS:
            row_plans, batch = setups[condition]
            c0, t0 = time.process_time(), time.perf_counter()
            generated[condition] = run(model, tokenizer, prompts, row_plans, batch, args.tokens)
            t, c = time.perf_counter() - t0, time.process_time() - c0
            log(f"round {round_} {condition}: {t:.2f} s wall, {c:.2f} s cpu")
            if round_:
                wall[condition].append(t)
                cpu[condition].append(c)
    med = {c: statistics.median(wall[c]) for c in CONDITIONS}
    med_cpu = {c: statistics.median(cpu[c]) for c in CONDITIONS}
    tps = {c: generated[c] / med[c] for c in CONDITIONS}
    steered_ratio = tps["steered"] / tps["unsteered"]
    batch_ratio = tps["unsteered"] / tps["loop"]
    print(
        json.dumps(
            {
                "model": "gemma3-270m (float32, dequantized Q4_K_M)",
                "device": "cpu",
                "threads": args.threads,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "prompts": len(prompts),
                "batch_size": len(prompts),
                "new_tokens_per_prompt": args.tokens,
                "repeats": args.repeats,
                "plan": "per row: set 2.5 % + add 2.5 % of the neurons of each of "
                f"{sites.n_layers} layers (width {sites.width})",
                "wall_s": {c: [round(v, 3) for v in wall[c]] for c in CONDITIONS},
                "median_wall_s": {c: round(v, 3) for c, v in med.items()},
                "tokens_per_s": {c: round(v, 2) for c, v in tps.items()},
                "steered_vs_unsteered": round(steered_ratio, 3),
                "batched_vs_loop": round(batch_ratio, 2),
                "cpu_time_ratios": {
                    "steered_vs_unsteered": round(med_cpu["unsteered"] / med_cpu["steered"], 3),
                    "batched_vs_loop": round(med_cpu["loop"] / med_cpu["unsteered"], 2),
                },
                "targets": {
                    "steered_vs_unsteered >= 0.95": steered_ratio >= 0.95,
                    "batched_vs_loop >= 4": batch_ratio >= 4.0,
                },
                "load_average_before": [round(v, 2) for v in load_before],
                "load_average_after": [round(v, 2) for v in os.getloadavg()],
            },
            indent=None,
        )
    )


if __name__ == "__main__":
    main()
