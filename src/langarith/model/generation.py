"""Batched greedy generation with per-row steering plans (left padding, KV cache, stop strings)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from langarith.core.plans import Plan
from langarith.model.placement import input_device
from langarith.model.steering import CompiledPlans, steer


def cut_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    """``text`` up to the earliest stop string, stripped."""
    end = len(text)
    for stop in stop_strings:
        pos = text.find(stop)
        if pos != -1:
            end = min(end, pos)
    return text[:end].strip()


class StopOnStrings(StoppingCriteria):
    """Stops a row once the text of its last few new tokens contains a stop string.

    Cheaper than transformers' ``StopStringCriteria`` for large vocabularies (no per-call
    preprocessing of the whole vocabulary); the text is cut exactly by ``cut_at_stop`` later.
    """

    def __init__(self, tokenizer, stop_strings: Sequence[str], prompt_length: int, window: int = 8):
        self.tokenizer = tokenizer
        self.stop_strings = tuple(stop_strings)
        self.prompt_length = prompt_length
        self.window = window

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        start = max(self.prompt_length, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        done = [any(stop in tail for stop in self.stop_strings) for tail in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def prepare_tokenizer(tokenizer):
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    plans: Sequence[Plan] | None = None,
    *,
    max_new_tokens: int = 64,
    repetition_penalty: float = 1.1,
    stop_strings: Sequence[str] = (),
    batch_size: int = 16,
    positions: str = "all",
    progress: bool = True,
) -> list[str]:
    """Greedy continuations of ``prompts``; row ``i`` is steered by ``plans[i]`` (if given).

    Prompts are batched by token length (less padding); results come back in input order.
    """
    if plans is not None and len(plans) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(plans)} plans")
    prepare_tokenizer(tokenizer)
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (lengths[i], i))
    outputs: list[str] = [""] * len(prompts)
    device = input_device(model)
    compiled = CompiledPlans(model)  # sites found and plans compiled once for every batch
    bar = tqdm(total=len(prompts), desc="generating", unit="prompt", disable=not progress)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in rows], return_tensors="pt", padding=True).to(device)
        row_plans = [plans[i] for i in rows] if plans is not None else [[]]
        prompt_length = enc["input_ids"].shape[1]
        stopping = StoppingCriteriaList(
            [StopOnStrings(tokenizer, stop_strings, prompt_length)] if stop_strings else []
        )
        with steer(model, row_plans, positions=positions, compiled=compiled):
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                repetition_penalty=repetition_penalty,
                stopping_criteria=stopping,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = out[:, prompt_length:]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        for i, text in zip(rows, texts):
            outputs[i] = cut_at_stop(text, stop_strings)
        bar.update(len(rows))
    bar.close()
    return outputs
