"""The fallback experiment: cumulative steps, union plans, prompts, batched generation equal to
one-at-a-time calls, and the per-step language distribution by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from conftest import REPO, load_tiny

from langarith.core.plans import compile_plan
from langarith.core.selection import NeuronSet
from langarith.experiments.fallback import (
    PROMPT_TEMPLATE,
    cumulative_steps,
    deactivation,
    distribution,
    run_fallback,
    union_size,
)
from langarith.io.prompts import read_prompts
from langarith.model.generation import generate
from langarith.model.steering import steer
from langarith.workflow.settings.fallback import resolve_fallback

CONFIG = {"languages": ["zh", "de", "en", "fr", "bo"], "selections": {"lape-1": {}}}


def toy_neurons() -> NeuronSet:
    masks = {
        "en": [np.array([1, 2]), np.array([], dtype=np.int64), np.array([5])],
        "fr": [np.array([2, 3]), np.array([7]), np.array([], dtype=np.int64)],
        "de": [np.array([], dtype=np.int64), np.array([7, 9]), np.array([5, 6])],
        "zh": [np.array([40]), np.array([], dtype=np.int64), np.array([], dtype=np.int64)],
        "bo": [np.array([0]), np.array([0]), np.array([0])],
    }
    return NeuronSet(languages=tuple(masks), n_layers=3, width=48, masks=masks)


def test_settings_keep_the_anchor_order_of_configured_languages():
    settings = resolve_fallback({"selections": ["lape-1"]}, CONFIG)
    assert settings["order"] == ["en", "fr", "de", "zh"]  # es it pt ru ar ko ja not configured
    assert settings["value"] == -1.5
    assert settings["generation"]["repetition_penalty"] == 1.1
    assert cumulative_steps(["en", "fr", "de"]) == [(), ("en",), ("en", "fr"), ("en", "fr", "de")]
    with pytest.raises(ValueError, match="fallback.selections: 'x'"):
        resolve_fallback({"selections": ["x"]}, CONFIG)
    with pytest.raises(ValueError, match="fallback.order"):
        resolve_fallback({"selections": ["lape-1"], "order": ["ko", "ja"]}, CONFIG)


def union_plan(neurons, langs, value):
    return deactivation(langs, value).plan("", "", neurons, None)


def test_deactivation_sets_the_union_by_hand():
    neurons = toy_neurons()
    plan = union_plan(neurons, ["en", "fr", "de"], -1.5)
    compiled = compile_plan(plan, neurons.n_layers, neurons.width)
    got = {layer: np.flatnonzero(a == 0.0).tolist() for layer, (a, _) in compiled.items()}
    assert got == {0: [1, 2, 3], 1: [7, 9], 2: [5, 6]}  # shared 2, 7, 5 counted once
    for a, b in compiled.values():
        assert np.all(b[a == 0.0] == -1.5) and np.all(b[a == 1.0] == 0.0)
    assert all(op.op == "set" and np.all(op.values == -1.5) for op in plan)
    assert union_size(neurons, ["en", "fr", "de"]) == 7
    assert union_plan(neurons, [], -1.5) == []


def test_deactivated_neurons_hold_the_constant(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    seen = []
    with torch.no_grad(), steer(model, union_plan(toy_neurons(), ["en", "fr", "de"], -1.5)):
        handle = model.model.layers[1].mlp.act_fn.register_forward_hook(  # after steering's
            lambda _m, _i, out: seen.append(out.detach().clone())
        )
        model(**tokenizer(["Q: Why?\nA:"], return_tensors="pt"))
        handle.remove()
    assert torch.all(seen[0][..., [7, 9]] == -1.5)
    assert not torch.any(seen[0][..., [0, 1, 8]] == -1.5)


def test_prompts_have_the_newline_before_the_answer_cue():
    prompts = read_prompts(REPO / "resources" / "prompts" / "fallback_en.txt", PROMPT_TEMPLATE)
    assert len(prompts) == 70
    assert prompts[0] == "Q: How can I build a habit of reading every day?\nA:"
    assert (
        read_prompts(REPO / "resources" / "prompts" / "fallback_en.txt", PROMPT_TEMPLATE, 3)
        == prompts[:3]
    )


@pytest.mark.parametrize("positions", ["all", "prompt", "generated"])
def test_batched_steps_equal_one_call_per_step(tiny_llama_dir, positions):
    model, tokenizer = load_tiny(tiny_llama_dir)
    neurons = toy_neurons()
    prompts = ["Q: How are you?\nA:", "Q: Where is the station?\nA:"]
    settings = {
        "order": ["en", "fr", "de"],
        "value": -1.5,
        "generation": {
            "max_new_tokens": 5,
            "repetition_penalty": 1.1,
            "stop_strings": ["\nQ:", "\nA:"],
            "batch_size": 3,
            "positions": positions,
        },
    }
    frame = run_fallback(model, tokenizer, neurons, prompts, settings)
    assert frame.height == 4 * 2
    assert frame["deactivated"].to_list()[::2] == ["", "en", "en,fr", "en,fr,de"]
    assert frame["n_neurons"].to_list()[::2] == [0, 3, 5, 7]
    for k, langs in enumerate(cumulative_steps(settings["order"])):
        alone = generate(
            model,
            tokenizer,
            prompts,
            [union_plan(neurons, langs, -1.5)] * 2,
            max_new_tokens=5,
            stop_strings=["\nQ:", "\nA:"],
            batch_size=1,
            progress=False,
            positions=positions,
        )
        assert frame.filter(pl.col("step") == k)["output"].to_list() == alone


def test_distribution_and_modal_language_by_hand():
    langid = pl.DataFrame(
        {
            "step": [0, 0, 0, 1, 1, 1, 1],
            "deactivated": ["", "", "", "en", "en", "en", "en"],
            "added_lang": ["", "", "", "en", "en", "en", "en"],
            "n_neurons": [0, 0, 0, 4, 4, 4, 4],
            "pred_lang": ["en", "en", "fr", "fr", "de", "de", "fr"],
        },
        schema_overrides={"step": pl.Int32, "n_neurons": pl.Int64},
    )
    dist = distribution(langid)
    rows = {(r["step"], r["pred_lang"]): r for r in dist.iter_rows(named=True)}
    assert rows[(0, "en")]["count"] == 2 and rows[(0, "en")]["share"] == pytest.approx(2 / 3)
    assert rows[(0, "fr")]["modal_lang"] == "en"
    assert rows[(1, "de")]["share"] == 0.5 and rows[(1, "de")]["modal_lang"] == "de"  # tie: de < fr
    assert rows[(1, "fr")]["label"] == "1: en" and rows[(0, "en")]["label"] == "0: none"
    assert dist.group_by("step").agg(pl.col("share").sum())["share"].to_list() == [1.0, 1.0]
