"""Batched log-likelihood of multiple-choice options under steering.

For a prompt ``x`` and an option ``o = (o_1 … o_n)`` (its tokens, encoded without special
tokens and appended to the prompt's tokens, so the prompt is tokenized exactly as for
generation), the score is

    log p(o | x) = Σ_k log p(o_k | x, o_1 … o_{k-1})

Two ways to compute it, equal up to float rounding (both are tested against a direct
one-sequence-at-a-time computation):

* ``padding_side="left"`` (the default, as in generation) shares the prompt: one forward pass
  over the batch of distinct (prompt, plan) pairs, with the KV cache kept, gives ``o_1`` of
  every option from the last position; options of two or more tokens then run their
  ``o_1 … o_{n-1}`` as one short continuation batch on top of a copy of that cache. A prompt is
  processed once however many options it has (Belebele's ``" A" … " D"`` need no continuation at
  all; XNLI's label words a few tokens each).
* ``padding_side="right"`` runs one row ``x + o_1 … o_{n-1}`` per distinct option prefix and
  reads its last ``n`` positions; options that share every token but the last share a row.

Each forward pass runs under :func:`langarith.model.steering.steer` with one plan per row; position
ids follow the attention mask; the LM head is applied only to the positions that are read
(``logits_to_keep``). Identical (prompt, plan) pairs run once.

``positions`` scopes the plans as in generation (the option plays the generated text):
``all`` steers every position, ``prompt`` only the prompt's (the option's tokens then attend to
the steered prompt through the cache, unsteered themselves), ``generated`` only the option's
``o_1 … o_{n-1}`` (so ``o_1`` is predicted by the unsteered prompt, as the first generated token
is). With left padding the prompt and the continuation are separate passes, so the scope is
which pass is steered; right padding runs both in one pass and supports ``all`` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from langarith.core.plans import POSITION_SCOPES, Plan, plan_key
from langarith.model.placement import input_device
from langarith.model.steering import CompiledPlans, steer

PADDING_SIDES = ("left", "right")


@dataclass
class _Row:
    ids: tuple[int, ...]
    plan: Plan
    n_read: int  # the last n_read positions predict the option tokens
    reads: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)  # item, option, ids


def _encode_option(tokenizer, option: str) -> tuple[int, ...]:
    ids = tuple(tokenizer(option, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"option {option!r} encodes to no tokens")
    return ids


def build_rows(
    tokenizer,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    plans: Sequence[Plan] | None = None,
) -> list[_Row]:
    """The forward-pass rows needed to score every option of every prompt (deduplicated)."""
    if len(options) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(options)} option lists")
    if plans is not None and len(plans) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(plans)} plans")
    rows: dict[tuple, _Row] = {}
    option_cache: dict[str, tuple[int, ...]] = {}
    for i, (prompt, item_options) in enumerate(zip(prompts, options)):
        if not item_options:
            raise ValueError(f"prompt {i} has no options")
        prompt_ids = tuple(tokenizer(prompt)["input_ids"])
        plan = plans[i] if plans is not None else []
        pkey = plan_key(plan)
        for j, option in enumerate(item_options):
            if option not in option_cache:
                option_cache[option] = _encode_option(tokenizer, option)
            opt = option_cache[option]
            ids = prompt_ids + opt[:-1]
            key = (ids, pkey)
            if key not in rows:
                rows[key] = _Row(ids=ids, plan=plan, n_read=len(opt))
            rows[key].reads.append((i, j, opt))
    return list(rows.values())


def _batch_inputs(rows: Sequence[_Row], pad_id: int, padding_side: str, device):
    length = max(len(r.ids) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for r, row in enumerate(rows):
        n = len(row.ids)
        span = slice(length - n, length) if padding_side == "left" else slice(0, n)
        ids[r, span] = torch.tensor(row.ids, dtype=torch.long)
        mask[r, span] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


def _read_logits(model, ids, mask, positions, rows) -> torch.Tensor:
    """``[batch, k, vocab]`` logits of the last ``k = max n_read`` real positions of each
    right-padded row (2-D ``logits_to_keep``: per-row positions)."""
    k = max(r.n_read for r in rows)
    lengths = mask.sum(-1)  # [B]
    offsets = torch.arange(k, device=ids.device) - k  # -k … -1
    keep = (lengths[:, None] + offsets[None, :]).clamp(min=0)  # [B, k]
    logits = model(
        input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
    ).logits
    if logits.ndim != 3 or logits.shape[:2] != (len(rows), k):  # no 2-D logits_to_keep (older)
        full = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        logits = torch.take_along_dim(full, keep[..., None], dim=1)
    return logits


@dataclass
class _Prefix:
    ids: tuple[int, ...]
    plan: Plan
    reads: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)  # item, option, ids


def build_prefixes(
    tokenizer,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    plans: Sequence[Plan] | None = None,
) -> list[_Prefix]:
    """One entry per distinct (prompt tokens, plan), holding every option to read after it."""
    if len(options) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(options)} option lists")
    if plans is not None and len(plans) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(plans)} plans")
    prefixes: dict[tuple, _Prefix] = {}
    cache: dict[str, tuple[int, ...]] = {}
    for i, (prompt, item_options) in enumerate(zip(prompts, options)):
        if not item_options:
            raise ValueError(f"prompt {i} has no options")
        ids = tuple(tokenizer(prompt)["input_ids"])
        plan = plans[i] if plans is not None else []
        key = (ids, plan_key(plan))
        if key not in prefixes:
            prefixes[key] = _Prefix(ids=ids, plan=plan)
        for j, option in enumerate(item_options):
            if option not in cache:
                cache[option] = _encode_option(tokenizer, option)
            prefixes[key].reads.append((i, j, cache[option]))
    return list(prefixes.values())


def _scoped(plans: list[Plan], steered: bool) -> list[Plan]:
    """``plans``, or one empty plan (no hooks at all) for a pass outside the position scope."""
    return plans if steered else [[]]


def _shared_prefix_batch(
    model,
    batch: Sequence[_Prefix],
    pad_id: int,
    device,
    result,
    scope: str = "all",
    compiled: CompiledPlans | None = None,
) -> None:
    """Score every option of a batch of prefixes: prompt once, then the continuations; the
    plans act on the prompt pass unless ``scope`` is ``generated``, on the continuation pass
    unless it is ``prompt``."""
    ids, mask, positions = _batch_inputs(batch, pad_id, "left", device)
    conts: dict[tuple[int, tuple[int, ...]], int] = {}  # (prefix row, o_1 … o_{n-1}) -> row
    for b, prefix in enumerate(batch):
        for _item, _option, opt in prefix.reads:
            if len(opt) > 1:
                conts.setdefault((b, opt[:-1]), len(conts))
    plans = _scoped([prefix.plan for prefix in batch], scope != "generated")
    with steer(model, plans, compiled=compiled):
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=bool(conts),
            logits_to_keep=1,
        )
    last = out.logits[:, -1].float().log_softmax(-1)  # [B, vocab]: predicts o_1
    cont_logprobs = None
    if conts:
        rows = list(conts)
        index = torch.tensor([b for b, _ in rows], device=device)
        width = max(len(tokens) for _, tokens in rows)
        cont_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        cont_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for c, (_, tokens) in enumerate(rows):
            cont_ids[c, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            cont_mask[c, : len(tokens)] = 1
        cont_ids, cont_mask = cont_ids.to(device), cont_mask.to(device)
        cache = out.past_key_values
        cache.reorder_cache(index)  # one copy of its prompt's cache per continuation row
        attention = torch.cat([mask[index], cont_mask], dim=1)
        start = mask.sum(-1)[index][:, None]  # real prompt length = first continuation position
        cont_positions = start + torch.arange(width, device=device)[None, :]
        cont_plans = [batch[b].plan for b, _ in rows]
        with steer(model, _scoped(cont_plans, scope != "prompt"), compiled=compiled):
            cont_out = model(
                input_ids=cont_ids,
                attention_mask=attention,
                position_ids=cont_positions,
                past_key_values=cache,
                use_cache=True,
            )
        cont_logprobs = cont_out.logits.float().log_softmax(-1)  # [C, width, vocab]
    for b, prefix in enumerate(batch):
        for item, option, opt in prefix.reads:
            total = last[b, opt[0]]
            if len(opt) > 1:
                c = conts[(b, opt[:-1])]
                targets = torch.tensor(opt[1:], device=cont_logprobs.device)
                steps = torch.arange(len(opt) - 1, device=cont_logprobs.device)
                total = total + cont_logprobs[c, steps, targets].sum()
            result[item][option] = float(total)


@torch.inference_mode()
def option_logliks(
    model,
    tokenizer,
    prompts: Sequence[str],
    options: Sequence[Sequence[str]],
    plans: Sequence[Plan] | None = None,
    *,
    batch_size: int = 16,
    padding_side: str = "left",
    positions: str = "all",
    progress: bool = False,
) -> list[list[float]]:
    """``log p(option | prompt)`` (natural log, summed over the option's tokens) for every option
    of every prompt; prompt ``i`` runs under ``plans[i]`` (if given), on the ``positions`` scope
    (``all``, ``prompt`` or ``generated``, see the module). Returns one list per prompt, in the
    order of ``options[i]``."""
    if padding_side not in PADDING_SIDES:
        raise ValueError(f"padding_side must be one of {', '.join(PADDING_SIDES)}")
    if positions not in POSITION_SCOPES:
        raise ValueError(f"positions must be one of {', '.join(POSITION_SCOPES)}")
    if padding_side == "right" and positions != "all":
        raise ValueError(f"positions={positions!r} needs padding_side='left'")
    result = [[float("nan")] * len(opts) for opts in options]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = input_device(model)
    compiled = CompiledPlans(model)  # sites found and plans compiled once for every batch
    if padding_side == "left":
        prefixes = build_prefixes(tokenizer, prompts, options, plans)
        order = sorted(range(len(prefixes)), key=lambda r: (len(prefixes[r].ids), r))
        bar = tqdm(
            total=len(order), desc="option log-likelihoods", unit="prompt", disable=not progress
        )
        for start in range(0, len(order), batch_size):
            batch = [prefixes[r] for r in order[start : start + batch_size]]
            _shared_prefix_batch(model, batch, pad_id, device, result, positions, compiled)
            bar.update(len(batch))
        bar.close()
        return result
    rows = build_rows(tokenizer, prompts, options, plans)
    order = sorted(range(len(rows)), key=lambda r: (len(rows[r].ids), r))
    bar = tqdm(total=len(rows), desc="option log-likelihoods", unit="row", disable=not progress)
    for start in range(0, len(order), batch_size):
        batch = [rows[r] for r in order[start : start + batch_size]]
        ids, mask, positions = _batch_inputs(batch, pad_id, "right", device)
        with steer(model, [row.plan for row in batch], compiled=compiled):
            logits = _read_logits(model, ids, mask, positions, batch)
        logprobs = logits.float().log_softmax(-1)
        k = logprobs.shape[1]
        for r, row in enumerate(batch):
            window = logprobs[r, k - row.n_read :]  # [n_read, vocab]
            for item, option, opt_ids in row.reads:
                target = torch.tensor(opt_ids, device=window.device)
                total = window.gather(-1, target[:, None]).sum()
                result[item][option] = float(total)
        bar.update(len(batch))
    bar.close()
    return result


def argmax_option(logliks: Sequence[float]) -> int:
    """Index of the most likely option (the first one on ties), as ``loglik_accuracy`` scores."""
    return max(range(len(logliks)), key=lambda i: (logliks[i], -i))
