"""Batched option log-likelihoods equal a direct, one-sequence-at-a-time computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import load_tiny

from langarith.core.plans import NeuronOp
from langarith.model.loglik import argmax_option, build_prefixes, build_rows, option_logliks
from langarith.model.steering import steer

PROMPTS = [
    "Read the passage. Passage: The cat sat on the mat.\n\nQuestion: Where?\n\nAnswer:",
    "Premise: A man plays a guitar on the street.\nHypothesis: Music.\nAnswer:",
    "Q: Hi\nA:",
    "Translate this English sentence into German: The weather is nice today. Translation:",
    "Wie ist das Wetter heute in Berlin und in Paris? Antwort:",
]
OPTIONS = [
    [" A", " B", " C", " D"],
    [" Entailment", " Neutral", " Contradiction"],
    [" yes", " no"],
    [" Das Wetter ist heute schön.", " Le temps est beau."],
    [" A", " Sonne", " Regen und Wind"],
]


def plan_for(i: int) -> list[NeuronOp]:
    """A different plan per prompt: set, add and scale on several layers (none for prompt 2)."""
    if i == 2:
        return []
    rng = np.random.default_rng(i)
    return [
        NeuronOp("set", 0, np.array([1, 5, 9]) + i, np.full(3, -1.5)),
        NeuronOp("add", 1, np.arange(0, 48, 3), rng.normal(0, 2, 16)),
        NeuronOp("scale", 2, np.array([2, 4, 6, 8]), np.full(4, 3.0)),
    ]


def direct_loglik(model, tokenizer, prompt: str, option: str, plan) -> float:
    """Σ log p(option tokens | prompt) from one unpadded forward pass over prompt + option."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    option_ids = tokenizer(option, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + option_ids])
    with torch.no_grad(), steer(model, plan):
        logprobs = model(input_ids=ids).logits[0].float().log_softmax(-1)
    total = 0.0
    for k, token in enumerate(option_ids):
        total += float(logprobs[len(prompt_ids) + k - 1, token])
    return total


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_batched_equals_direct_under_per_row_plans(arch, padding_side, request):
    model, tokenizer = load_tiny(request.getfixturevalue(f"tiny_{arch}_dir"))
    plans = [plan_for(i) for i in range(len(PROMPTS))]
    batched = option_logliks(
        model, tokenizer, PROMPTS, OPTIONS, plans, batch_size=3, padding_side=padding_side
    )
    for i, (prompt, options) in enumerate(zip(PROMPTS, OPTIONS)):
        expected = [direct_loglik(model, tokenizer, prompt, o, plans[i]) for o in options]
        np.testing.assert_allclose(batched[i], expected, rtol=1e-4, atol=1e-4)
    # the plans matter: without them the values differ (prompt 2 has an empty plan)
    plain = option_logliks(model, tokenizer, PROMPTS, OPTIONS, batch_size=3)
    assert plain[2] == pytest.approx(batched[2], abs=1e-4)
    assert abs(plain[0][0] - batched[0][0]) > 1e-3


def test_options_sharing_all_but_the_last_token_share_a_row(tiny_llama_dir):
    _, tokenizer = load_tiny(tiny_llama_dir)
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    rows = build_rows(tokenizer, PROMPTS, OPTIONS)
    # by hand: one row per distinct (prompt, option tokens without the last one)
    expected = sum(len({tuple(encode(o)[:-1]) for o in options}) for options in OPTIONS)
    assert len(rows) == expected
    assert sum(len(r.reads) for r in rows) == sum(len(o) for o in OPTIONS)
    # the letters: those of one token share the prompt's row, longer ones share by prefix
    prefixes = {tuple(encode(o)[:-1]) for o in OPTIONS[0]}
    first_rows = [r for r in rows if any(item == 0 for item, _, _ in r.reads)]
    assert len(first_rows) == len(prefixes) < len(OPTIONS[0])


def test_left_padding_runs_each_prompt_once_and_only_continues_long_options(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    prefixes = build_prefixes(tokenizer, PROMPTS, OPTIONS)
    assert len(prefixes) == len(PROMPTS)
    assert [len(p.reads) for p in prefixes] == [len(o) for o in OPTIONS]
    fed = []  # how many token positions each forward pass processes
    handle = model.model.embed_tokens.register_forward_hook(
        lambda _m, inputs, _o: fed.append(inputs[0].numel())
    )
    option_logliks(model, tokenizer, PROMPTS, OPTIONS, batch_size=8, padding_side="left")
    shared = sum(fed)
    fed.clear()
    option_logliks(model, tokenizer, PROMPTS, OPTIONS, batch_size=8, padding_side="right")
    handle.remove()
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    longest = max(len(tokenizer(p)["input_ids"]) for p in PROMPTS)
    continuation = max(len(encode(o)) for opts in OPTIONS for o in opts) - 1
    multi = {(i, tuple(encode(o)[:-1])) for i, opts in enumerate(OPTIONS) for o in opts}
    multi = {m for m in multi if m[1]}
    # by hand: one padded prefill of every prompt, then one padded continuation per prefix
    assert shared == len(PROMPTS) * longest + len(multi) * continuation
    assert shared < sum(fed)


def test_identical_prompt_and_plan_run_once(tiny_llama_dir):
    _, tokenizer = load_tiny(tiny_llama_dir)
    rows = build_rows(tokenizer, [PROMPTS[2]] * 3, [OPTIONS[2]] * 3, [[], [], plan_for(1)])
    plain = build_rows(tokenizer, [PROMPTS[2]], [OPTIONS[2]])
    assert len(rows) == 2 * len(plain)


def test_argmax_takes_the_first_of_ties_and_errors_are_clear(tiny_llama_dir):
    assert argmax_option([-2.0, -1.0, -1.0]) == 1
    _, tokenizer = load_tiny(tiny_llama_dir)
    with pytest.raises(ValueError, match="option lists"):
        build_rows(tokenizer, ["a", "b"], [[" x"]])
    with pytest.raises(ValueError, match="no tokens"):
        build_rows(tokenizer, ["a"], [[""]])


def masked_loglik(model, tokenizer, prompt: str, option: str, plan, scope: str) -> float:
    """Σ log p(option tokens | prompt) from one unpadded pass over prompt + option in which the
    plan acts, by a position-masked hook, only on the prompt's positions (``prompt``) or only on
    the option's (``generated``)."""
    from langarith.core.plans import compile_plan
    from langarith.model.sites import find_sites

    prompt_ids = tokenizer(prompt)["input_ids"]
    option_ids = tokenizer(option, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + option_ids])
    steered = torch.arange(ids.shape[1]) < len(prompt_ids)
    if scope == "generated":
        steered = ~steered
    sites = find_sites(model)
    handles = []
    for layer, (a, b) in compile_plan(plan, sites.n_layers, sites.width).items():
        a, b = torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32)

        def hook(_m, _i, out, a=a, b=b):
            return torch.where(steered[None, :, None], out * a + b, out)

        handles.append(sites.modules[layer].register_forward_hook(hook))
    try:
        with torch.no_grad():
            logprobs = model(input_ids=ids).logits[0].float().log_softmax(-1)
    finally:
        for handle in handles:
            handle.remove()
    start = len(prompt_ids) - 1
    return sum(float(logprobs[start + k, token]) for k, token in enumerate(option_ids))


def test_position_scopes_steer_exactly_the_prompt_or_the_option(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    plans = [plan_for(i) for i in range(len(PROMPTS))]
    got = {
        scope: option_logliks(
            model, tokenizer, PROMPTS, OPTIONS, plans, batch_size=3, positions=scope
        )
        for scope in ("all", "prompt", "generated")
    }
    plain = option_logliks(model, tokenizer, PROMPTS, OPTIONS, batch_size=3)
    encode = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    for i, (prompt, options) in enumerate(zip(PROMPTS, OPTIONS)):
        for scope in ("prompt", "generated"):
            expected = [
                masked_loglik(model, tokenizer, prompt, o, plans[i], scope) for o in options
            ]
            np.testing.assert_allclose(got[scope][i], expected, rtol=1e-4, atol=1e-4)
        for j, option in enumerate(options):
            if len(encode(option)) == 1:  # o_1 is read from the prompt: steered iff it is
                assert got["prompt"][i][j] == pytest.approx(got["all"][i][j], abs=1e-4)
                assert got["generated"][i][j] == pytest.approx(plain[i][j], abs=1e-4)
    # the four differ on a long option (prompt 3's): each scope steers something of its own
    values = [got["all"][3][0], got["prompt"][3][0], got["generated"][3][0], plain[3][0]]
    assert min(abs(x - y) for k, x in enumerate(values) for y in values[k + 1 :]) > 1e-3
    with pytest.raises(ValueError, match="positions must be one of"):
        option_logliks(model, tokenizer, PROMPTS, OPTIONS, plans, positions="option")
    with pytest.raises(ValueError, match="needs padding_side='left'"):
        option_logliks(
            model, tokenizer, PROMPTS, OPTIONS, plans, padding_side="right", positions="prompt"
        )
