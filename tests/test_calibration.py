"""Calibration of the additive strength: prompts, choice rule, and a tiny-model sweep checked
against a direct, unbatched computation."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from conftest import REPO, load_tiny

from langarith.core.conditions import LanguageTables, build_plan, is_calibrated, parse_condition
from langarith.core.selection import NeuronSet
from langarith.core.text_quality import repetition, units
from langarith.experiments.calibration import (
    best_alpha,
    choose,
    judge,
    scaled_steps,
    sweep_outputs,
    sweep_scores,
)
from langarith.experiments.forcing import requests, run_condition
from langarith.experiments.steered_job import SteeredJob
from langarith.io.calibration import calibrated_alpha, read_alphas
from langarith.io.prompts import read_questions
from langarith.model.generation import generate
from langarith.workflow.settings.quality import check_calibrated_uses, resolve_calibration

PROMPTS = REPO / "resources" / "prompts"
STEPS = [
    {"op": "set", "lang": "source", "value": 0.0},
    {"op": "add", "lang": "target", "value": "mean", "strength": 1.0},
]


def test_calibration_prompts_are_disjoint_from_the_forcing_prompts():
    calibration = read_questions(PROMPTS / "calibration.tsv")
    forcing = read_questions(PROMPTS / "forcing.tsv")
    assert set(calibration) == set(forcing)  # the same languages
    for lang in forcing:
        assert len(calibration[lang]) >= 1
        assert not set(calibration[lang]) & set(forcing[lang]), lang
    every_forcing = {q for qs in forcing.values() for q in qs}
    assert not {q for qs in calibration.values() for q in qs} & every_forcing


def test_scaled_steps_sets_the_strength_of_additive_steps_only():
    steps = parse_condition("c", STEPS)
    scaled = scaled_steps(steps, 3.0)
    assert [s.strength for s in scaled] == [steps[0].strength, 3.0]
    assert scaled[0] == steps[0]
    with pytest.raises(ValueError, match="additive"):
        scaled_steps(parse_condition("d", STEPS[:1]), 2.0)


def test_best_alpha_ties_go_to_the_value_closest_to_one_then_the_smaller():
    assert best_alpha([(0.5, 0.2), (2.0, 0.8), (4.0, 0.5)]) == 2.0
    assert best_alpha([(0.5, 0.8), (2.0, 0.8), (4.0, 0.8)]) == 0.5  # |0.5−1| < |2−1|
    assert best_alpha([(0.0, 0.5), (2.0, 0.5)]) == 0.0  # equally far from 1: the smaller
    with pytest.raises(ValueError):
        best_alpha([])


def test_choice_and_calibrated_alpha(tmp_path):
    scores = pl.DataFrame(
        {
            "target_lang": ["de", "de", "zh", "zh"],
            "alpha": [1.0, 2.0, 1.0, 2.0],
            "n": [6, 6, 6, 6],
            "success_rate": [0.5, 1.0, 0.2, 0.3],
            "fluent_rate": [1.0, 0.5, 1.0, 1.0],
            "success_and_fluent": [0.5, 0.5, 0.2, 0.3],
        }
    )
    chosen = choose(scores)
    assert chosen["de"]["alpha"] == 1.0 and chosen["zh"]["alpha"] == 2.0
    assert [p["alpha"] for p in chosen["zh"]["sweep"]] == [1.0, 2.0]
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"targets": chosen}))
    assert calibrated_alpha(path, "zh") == 2.0
    assert calibrated_alpha({"targets": chosen}, "de") == 1.0
    with pytest.raises(ValueError, match="'fr'.*de zh"):
        calibrated_alpha(path, "fr")


def test_resolve_calibration_inherits_forcing_and_quality_settings():
    config = {
        "languages": ["en", "de", "zh"],
        "selections": {"s": {}},
        "conditions": {"baseline": [], "da": STEPS},
        "forcing": {
            "selections": ["s"],
            "conditions": ["baseline", "da"],
            "targets": "all",
            "generation": {"max_new_tokens": 16, "batch_size": 32},
        },
        "quality": {"max_repetition": 0.4, "calibration": {"grid": [1, 2], "max_new_tokens": 8}},
    }
    cal = resolve_calibration(config)
    assert cal["condition"] == "da" and cal["selections"] == ["s"]
    assert cal["targets"] == ["en", "de", "zh"] and cal["max_repetition"] == 0.4
    assert cal["generation"] == {"max_new_tokens": 8, "batch_size": 32}
    config["quality"]["calibration"]["condition"] = "baseline"
    with pytest.raises(ValueError, match="no additive step"):
        resolve_calibration(config)


def fake_identify(texts):
    """A deterministic stand-in for lid.176 whose label depends on the text."""
    return [("de", "fr", "en")[sum(map(ord, t)) % 3] for t in texts]


def test_tiny_model_calibration_picks_the_directly_computed_best(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    languages = ("en", "de", "fr")
    rng = np.random.default_rng(0)
    n_layers, width = model.config.num_hidden_layers, model.config.intermediate_size
    masks = {
        lang: [np.sort(rng.choice(width, 8, replace=False)) for _ in range(n_layers)]
        for lang in languages
    }
    neurons = NeuronSet(languages, n_layers, width, masks)
    tables = LanguageTables(
        act_mean={lang: rng.normal(0, 2, (n_layers, width)) for lang in languages},
        p_active={lang: rng.uniform(0, 1, (n_layers, width)) for lang in languages},
    )
    reqs = [
        r
        for r in requests(read_questions(PROMPTS / "calibration.tsv"), ["en"], ["de", "fr"])
        if r.question_idx < 3
    ]
    steps = parse_condition("da", STEPS)
    grid = [0.0, 1.0, 3.0, 8.0]
    generation = {"max_new_tokens": 5, "repetition_penalty": 1.1, "batch_size": 8}

    outputs = sweep_outputs(
        model, tokenizer, reqs, SteeredJob(steps, neurons, tables), grid, generation
    )
    assert outputs.height == len(grid) * len(reqs)
    chosen = choose(sweep_scores(judge(outputs, fake_identify, 3, 0.5)))

    direct: dict[str, dict[float, float]] = {"de": {}, "fr": {}}
    for alpha in grid:  # one α at a time, in other batches than the sweep's
        plans = [
            build_plan(scaled_steps(steps, alpha), r.source, r.target, neurons, tables)
            for r in reqs
        ]
        texts = generate(
            model, tokenizer, [r.prompt for r in reqs], plans,
            max_new_tokens=5, repetition_penalty=1.1, batch_size=len(reqs), progress=False,
        )  # fmt: skip
        batched = outputs.filter(pl.col("alpha") == alpha)["output"].to_list()
        assert texts == batched  # batching across grid points changes no output
        for target in direct:
            good = [
                lang == target and repetition(units(t), 3) <= 0.5
                for r, t, lang in zip(reqs, texts, fake_identify(texts))
                if r.target == target
            ]
            direct[target][alpha] = sum(good) / len(good)
    for target, by_alpha in direct.items():
        top = max(by_alpha.values())
        best = min((a for a in grid if by_alpha[a] == top), key=lambda a: (abs(a - 1), a))
        assert chosen[target]["alpha"] == best
        assert chosen[target]["success_and_fluent"] == pytest.approx(top)
    # the grid points differ: a real choice, not a tie broken by the rule
    assert any(len(set(by_alpha.values())) > 1 for by_alpha in direct.values())


# ------------------------------------------------------------------ the calibrated condition

CALIBRATED = [
    {"op": "set", "lang": "source", "value": 0.0},
    {"op": "add", "lang": "target", "value": "mean", "strength": "calibrated"},
]


def tiny_selection(model, languages=("en", "de", "fr"), seed=0):
    rng = np.random.default_rng(seed)
    n_layers, width = model.config.num_hidden_layers, model.config.intermediate_size
    masks = {
        lang: [np.sort(rng.choice(width, 8, replace=False)) for _ in range(n_layers)]
        for lang in languages
    }
    tables = LanguageTables(
        act_mean={lang: rng.normal(0, 2, (n_layers, width)) for lang in languages},
        p_active={lang: rng.uniform(0, 1, (n_layers, width)) for lang in languages},
    )
    return NeuronSet(languages, n_layers, width, masks), tables


def test_calibrated_strength_takes_alpha_per_target(tiny_llama_dir):
    model, _ = load_tiny(tiny_llama_dir)
    neurons, tables = tiny_selection(model)
    calibrated = parse_condition("calibrated", CALIBRATED)
    assert is_calibrated(calibrated) and is_calibrated(CALIBRATED)
    assert not is_calibrated(parse_condition("da", STEPS))
    alphas = {"de": 2.5, "fr": 0.5}
    for target, alpha in alphas.items():
        fixed = parse_condition("fixed", [STEPS[0], {**STEPS[1], "strength": alpha}])
        got = build_plan(calibrated, "en", target, neurons, tables, alphas)
        want = build_plan(fixed, "en", target, neurons, tables)
        assert len(got) == len(want) > 0
        for g, w in zip(got, want):
            assert (g.op, g.layer) == (w.op, w.layer)
            assert np.array_equal(g.neurons, w.neurons) and np.array_equal(g.values, w.values)
    with pytest.raises(ValueError, match="no calibrated α for target 'en'.*de fr"):
        build_plan(calibrated, "de", "en", neurons, tables, alphas)
    with pytest.raises(ValueError, match="no calibrated α"):
        build_plan(calibrated, "en", "de", neurons, tables)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"op": "scale", "lang": "target", "strength": "calibrated"}, "add or diffmean"),
        ({"op": "add", "lang": "target", "value": "mean", "strength": "strong"}, "not a number"),
    ],
)
def test_calibrated_strength_is_only_for_additive_steps(raw, message):
    with pytest.raises(ValueError, match=f"conditions.c\\[0\\]: .*{message}"):
        parse_condition("c", [raw])


def test_forcing_under_the_calibrated_condition_equals_the_fixed_alpha_runs(tiny_llama_dir):
    """One calibrated job = per target, the condition with that target's α written in."""
    model, tokenizer = load_tiny(tiny_llama_dir)
    neurons, tables = tiny_selection(model)
    reqs = [
        r
        for r in requests(read_questions(PROMPTS / "forcing.tsv"), ["en"], ["de", "fr"])
        if r.question_idx < 2
    ]
    generation = {"max_new_tokens": 5, "repetition_penalty": 1.1, "batch_size": 8}
    alphas = {"de": 4.0, "fr": 0.0}
    steps = parse_condition("calibrated", CALIBRATED)
    frame = run_condition(
        model, tokenizer, reqs, SteeredJob(steps, neurons, tables, alphas), generation
    )
    outputs = dict(zip(frame["item_id"], frame["output"]))
    for target, alpha in alphas.items():
        fixed = parse_condition("fixed", [STEPS[0], {**STEPS[1], "strength": alpha}])
        subset = [r for r in reqs if r.target == target]
        want = run_condition(
            model, tokenizer, subset, SteeredJob(fixed, neurons, tables), generation
        )
        for item, text in zip(want["item_id"], want["output"]):
            assert outputs[item] == text
    assert outputs["en-de-0"] != outputs["en-fr-0"]  # α 4 vs α 0: the targets really differ


def calibration_config(**calibration):
    return {
        "languages": ["en", "de", "zh"],
        "selections": {"s": {}, "t": {}},
        "conditions": {"baseline": [], "da": STEPS, "cal": CALIBRATED},
        "forcing": {
            "selections": ["s"],
            "conditions": ["baseline", "cal"],
            "targets": ["de", "zh"],
            "generation": {"max_new_tokens": 16, "batch_size": 32},
        },
        "quality": {"calibration": {"condition": "da", **calibration}},
    }


def test_calibrated_uses_must_be_covered_by_the_calibration():
    ok = calibration_config(targets="all")
    check_calibrated_uses(ok, resolve_calibration(ok))  # `all` = the forcing targets
    narrow = calibration_config(targets=["de"])
    with pytest.raises(ValueError, match="^forcing.conditions: 'cal' needs an α for zh; "):
        check_calibrated_uses(narrow, resolve_calibration(narrow))
    other = calibration_config(selections=["t"])
    with pytest.raises(ValueError, match="needs selection 's' in quality.calibration.selections"):
        check_calibrated_uses(other, resolve_calibration(other))
    none = calibration_config()
    del none["quality"]
    with pytest.raises(ValueError, match="quality.calibration is not configured"):
        check_calibrated_uses(none, resolve_calibration(none))
    task = calibration_config()
    task["tasks"] = {"qa": {"selections": ["s"], "conditions": ["cal"], "steer_langs": ["en"]}}
    with pytest.raises(ValueError, match="^tasks.qa.conditions: 'cal' needs an α for en"):
        check_calibrated_uses(task, resolve_calibration(task))


def test_read_alphas_names_every_missing_target(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"targets": {"de": {"alpha": 2.0}, "zh": {"alpha": 0.5}}}))
    assert read_alphas(path, ["zh", "de"]) == {"zh": 0.5, "de": 2.0}
    with pytest.raises(ValueError, match="cal.json has no α for target 'ru'"):
        read_alphas(path, ["de", "ru"])
