"""Batched generation: same outputs as one prompt at a time, per-row plans, stop strings."""

from __future__ import annotations

import numpy as np
from conftest import load_tiny

from langarith.core.plans import NeuronOp
from langarith.model.generation import cut_at_stop, generate

PROMPTS = [
    "Q: How are you today? \nA:",
    "Q: Wie geht es dir? \nA:",
    "Q: 你今天怎么样？ \nA:",
    "Hello",
]


def test_cut_at_stop_takes_the_earliest_stop():
    assert cut_at_stop(" Fine.\nQ: next\nA: x", ("\nA:", "\nQ:")) == "Fine."
    assert cut_at_stop("  no stop  ", ("\nQ:",)) == "no stop"


def test_batched_equals_one_by_one(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    kwargs = dict(max_new_tokens=8, repetition_penalty=1.1, progress=False)
    batched = generate(model, tokenizer, PROMPTS, batch_size=4, **kwargs)
    single = [generate(model, tokenizer, [p], batch_size=1, **kwargs)[0] for p in PROMPTS]
    assert batched == single
    assert any(batched)


def test_rows_get_their_own_plans(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    plan = [NeuronOp("set", layer, np.arange(48), np.full(48, 2.0)) for layer in range(3)]
    kwargs = dict(max_new_tokens=8, progress=False)
    mixed = generate(model, tokenizer, PROMPTS[:2], plans=[[], plan], batch_size=2, **kwargs)
    plain = generate(model, tokenizer, PROMPTS[:1], batch_size=1, **kwargs)
    steered = generate(model, tokenizer, PROMPTS[1:2], plans=[plan], batch_size=1, **kwargs)
    assert mixed == plain + steered
    assert steered != generate(model, tokenizer, PROMPTS[1:2], batch_size=1, **kwargs)


def test_outputs_stop_at_stop_strings(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    free = generate(model, tokenizer, PROMPTS, max_new_tokens=12, progress=False)
    # stop at the second character of each free output: everything from it on is cut
    checked = 0
    for prompt, text in zip(PROMPTS, free):
        if len(text) < 3:
            continue
        stop = text[1:3]
        out = generate(
            model, tokenizer, [prompt], max_new_tokens=12, stop_strings=(stop,), progress=False
        )[0]
        assert out == text[: text.find(stop)].strip()
        assert len(out) < len(text)  # something was cut
        checked += 1
    assert checked >= 3, free  # the check ran on most prompts, not on none


def test_mixed_neuron_and_residual_plans_batched_equal_one_by_one(tiny_llama_dir):
    """Rows with no plan, a neuron plan, a residual plan and both, in one batch: each row's
    output is its output alone."""
    model, tokenizer = load_tiny(tiny_llama_dir)
    rng = np.random.default_rng(2)
    neurons = [NeuronOp("set", 1, np.arange(0, 48, 3), np.full(16, 1.5))]
    residual = [NeuronOp("add", 2, np.arange(32), 4.0 * rng.normal(size=32), site="residual")]
    plans = [[], neurons, residual, neurons + residual]
    prompts = [PROMPTS[1]] * 4
    kwargs = dict(max_new_tokens=8, repetition_penalty=1.1, progress=False)
    batched = generate(model, tokenizer, prompts, plans=plans, batch_size=4, **kwargs)
    single = [
        generate(model, tokenizer, [p], plans=[plan], batch_size=1, **kwargs)[0]
        for p, plan in zip(prompts, plans)
    ]
    assert batched == single
    assert len(set(batched)) == 4  # every plan changes the output: the check is not vacuous
