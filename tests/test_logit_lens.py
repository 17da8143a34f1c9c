"""Logit lens on tiny random models: the last layer reproduces the model's own logits, steering
moves the lens, and the language mass sums the right probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SELECTION_LANGS, load_tiny

from langarith.core.plans import NeuronOp
from langarith.experiments.logit_lens import (
    TokenLanguages,
    language_mass,
    last_position_states,
    lens_rows,
    top_tokens,
)
from langarith.model.lm_head import project

PROMPTS = ["Q: How are you today? \nA:", "Q: Wie heißt du? \nA:"]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_last_layer_of_the_lens_is_the_model_output(arch, tiny_llama_dir, tiny_gemma3_dir):
    model, tokenizer = load_tiny(tiny_llama_dir if arch == "llama" else tiny_gemma3_dir)
    if arch == "gemma3":
        model.config.final_logit_softcapping = 5.0  # the lens must apply it too
    states = last_position_states(model, tokenizer, PROMPTS)
    assert states.shape == (2, model.config.num_hidden_layers, model.config.hidden_size)
    lens = project(model, states[:, -1])
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**enc).logits[:, -1]
    torch.testing.assert_close(lens, logits, rtol=1e-4, atol=1e-4)


def test_steering_moves_the_lens_only_for_steered_rows(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    plan = [NeuronOp("add", 1, np.arange(10), np.full(10, 5.0))]
    plain = last_position_states(model, tokenizer, PROMPTS)
    mixed = last_position_states(model, tokenizer, PROMPTS, [plan, []])
    torch.testing.assert_close(mixed[1], plain[1])  # the unsteered row is untouched
    torch.testing.assert_close(mixed[0, 0], plain[0, 0])  # layers before the intervention too
    assert not torch.allclose(mixed[0, 1:], plain[0, 1:])
    probs, ids = top_tokens(model, mixed, 5)
    assert probs.shape == ids.shape == (2, model.config.num_hidden_layers, 5)
    assert torch.all(probs[..., :-1] >= probs[..., 1:])


def test_language_mass_and_token_language_cache(tiny_llama_dir):
    assert language_mass([0.5, 0.2, 0.1], ["de", "en", "de"], "de") == pytest.approx(0.6)
    _, tokenizer = load_tiny(tiny_llama_dir)
    calls = []

    def identify(texts):
        calls.append(list(texts))
        return ["de" if t.strip().isalpha() else "unknown" for t in texts]

    langs = TokenLanguages(tokenizer, identify)
    first = langs([10, 11, 10])
    second = langs([11, 10])
    assert first[0] == first[2] and second == [first[1], first[0]]
    assert len(calls) == 1 and len(calls[0]) == 2  # each token id identified once


def test_lens_rows_frame(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    rows = [
        {"prompt": p, "source_lang": "en", "target_lang": "de", "question_idx": i, "steered": s}
        for i, p in enumerate(PROMPTS)
        for s in (False, True)
    ]
    plan = [NeuronOp("add", 2, np.arange(5), np.full(5, 3.0))]
    plans = [plan if r["steered"] else [] for r in rows]
    frame = lens_rows(model, tokenizer, rows, plans, lambda ts: ["de"] * len(ts), 3, 3)
    n_layers = model.config.num_hidden_layers
    assert frame.height == len(rows) * n_layers
    # every token is "German" here, so the target mass is the whole top-3 mass
    totals = frame["top_probs"].list.sum().to_numpy()
    np.testing.assert_allclose(frame["target_mass"].to_numpy(), totals)
    assert (frame["english_mass"] == 0).all()


def test_an_unsteered_prompt_is_read_once_for_every_target(tiny_llama_dir, monkeypatch):
    from langarith.experiments import logit_lens

    model, tokenizer = load_tiny(tiny_llama_dir)
    rows = [
        {"prompt": PROMPTS[0], "source_lang": "en", "target_lang": t, "question_idx": 0,
         "steered": False}
        for t in ("de", "fr")
    ]  # fmt: skip
    read = []  # the prompts that go through the model
    states = logit_lens.last_position_states

    def counted(model_, tokenizer_, prompts, plans=None):
        read.extend(prompts)
        return states(model_, tokenizer_, prompts, plans)

    monkeypatch.setattr(logit_lens, "last_position_states", counted)
    calls = []

    def identify(texts):
        calls.append(list(texts))
        return ["de"] * len(texts)

    frame = lens_rows(model, tokenizer, rows, [[], []], identify, 3, 8)
    assert read == [PROMPTS[0]]  # one forward pass for both targets
    de, fr = frame.partition_by("target_lang", maintain_order=True)
    assert de["top_probs"].to_list() == fr["top_probs"].to_list()
    np.testing.assert_allclose(de["target_mass"], de["top_probs"].list.sum())
    assert (fr["target_mass"] == 0).all()
    plain = last_position_states(model, tokenizer, PROMPTS[:1])
    probs, ids = top_tokens(model, plain, 3)
    np.testing.assert_allclose(np.array(de["top_probs"].to_list()), probs[0].numpy(), rtol=1e-6)
    # every distinct top token of that one reading is identified once: the second target
    # adds no call
    assert sum(len(c) for c in calls) == len(set(ids.flatten().tolist()))


def test_the_lens_job_takes_a_calibrated_condition_s_alpha_per_target(
    pipeline_files, tiny_llama_dir, tmp_path
):
    """The logit lens runs on the one steered-job skeleton: a calibrated condition reads α per
    target from the calibration file, exactly as the same condition with that α written in."""
    import json

    import polars as pl
    from conftest import REPO

    from langarith.experiments.logit_lens import run_logit_lens_job
    from langarith.experiments.steered_job import SteeringFiles, read_steered_job
    from langarith.model.loading import prepare_model

    model_dir = tmp_path / "model"
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, model_dir)
    calibration = tmp_path / "calibration.json"
    alphas = {"de": 4.0, "fr": 0.0}
    calibration.write_text(json.dumps({"targets": {t: {"alpha": a} for t, a in alphas.items()}}))
    deactivate = {"op": "set", "lang": "source", "value": 0.0}

    def lens(name, add, targets, calibration_file=None):
        files = SteeringFiles(
            neurons=str(pipeline_files["neurons"]),
            summary=str(pipeline_files["summary"]),
            activations=[str(p) for p in pipeline_files["stats"]],
            calibration=calibration_file,
        )
        steps = [deactivate, {"op": "add", "lang": "target", "value": "mean", **add}]
        return run_logit_lens_job(
            model_dir=str(model_dir),
            model_options={},
            questions=str(REPO / "resources" / "prompts" / "forcing.tsv"),
            job=read_steered_job(name, steps, files, SELECTION_LANGS, targets, always_read=True),
            sources=["en"],
            targets=targets,
            top_k=3,
            batch_size=1,  # one prompt a pass: rows compare bit for bit across runs
            langid_model=None,
            output=str(tmp_path / f"{name}.parquet"),
        )

    calibrated = lens("calibrated", {"strength": "calibrated"}, ["de", "fr"], str(calibration))
    for target, alpha in alphas.items():
        fixed = lens(f"fixed-{target}", {"strength": alpha}, [target])
        mine = calibrated.filter(pl.col("target_lang") == target)
        assert mine.height == fixed.height > 0
        assert mine.equals(fixed), target
    steered = calibrated.filter(pl.col("steered"))
    assert steered.filter(pl.col("target_lang") == "de")["top_probs"].to_list() != (
        steered.filter(pl.col("target_lang") == "fr")["top_probs"].to_list()
    )  # α 4 vs α 0: the targets really differ
