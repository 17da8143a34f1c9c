"""Task jobs: settings, the (test × steered) grid, generations equal to direct calls, position
scopes that steer exactly the prompt or the new tokens, and scores (with improvements)
recomputed by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch
from conftest import load_tiny

from langarith.core.conditions import (
    LanguageTables,
    build_plan,
    parse_condition,
    unsteered_condition,
)
from langarith.core.plans import NeuronOp
from langarith.core.selection import NeuronSet
from langarith.experiments.steered_job import SteeredJob
from langarith.experiments.tasks import TaskItem, qa, reading
from langarith.experiments.tasks.run import (
    TaskRequest,
    items_from_frame,
    load_task_items,
    run_requests,
    task_requests,
    task_scores,
)
from langarith.model.generation import generate
from langarith.model.loglik import option_logliks
from langarith.workflow.settings.tasks import TaskConfigError, job_settings, resolve_task

LANGS = ("en", "de", "fr")
CONFIG = {
    "languages": list(LANGS),
    "selections": {"lape-1": {"top_rate": 0.01}},
    "conditions": {
        "baseline": [],
        "activate": [{"op": "add", "lang": "target", "value": "mean"}],
        "deactivate-activate": [
            {"op": "set", "lang": "source", "value": 0.0},
            {"op": "add", "lang": "target", "value": "mean"},
        ],
    },
}
RAW = {
    "source": {"kind": "builtin"},
    "langs": ["en", "de"],
    "max_items": 2,
    "selections": ["lape-1"],
    "conditions": ["baseline", "activate"],
}


def test_settings_take_the_task_defaults_and_check_every_key():
    settings = resolve_task("reading", RAW, CONFIG)
    assert settings["steer_langs"] == list(LANGS)  # default: all configured languages
    assert settings["generation"] == {
        "max_new_tokens": reading.SPEC.max_new_tokens,
        "stop_strings": list(reading.SPEC.stop_strings),
        "repetition_penalty": 1.1,
        "batch_size": 16,
        "positions": "all",
    }
    assert settings["plot_metric"] == "accuracy"
    small = resolve_task("qa", {**RAW, "generation": {"max_new_tokens": 5}}, CONFIG)
    assert small["generation"]["max_new_tokens"] == 5
    assert small["generation"]["stop_strings"] == list(qa.SPEC.stop_strings)
    scoped = resolve_task("qa", {**RAW, "generation": {"positions": "prompt"}}, CONFIG)
    assert scoped["generation"]["positions"] == "prompt"
    assert job_settings(scoped) != job_settings(resolve_task("qa", RAW, CONFIG))
    # adding a selection or changing the figure's metric does not touch the job's settings
    other = resolve_task("reading", {**RAW, "plot_metric": "accuracy_loglik"}, CONFIG)
    assert job_settings(other) == job_settings(settings)
    bad = [
        ({**RAW, "selections": ["lape-9"]}, "tasks.reading.selections: 'lape-9'"),
        ({**RAW, "conditions": ["nope"]}, "tasks.reading.conditions: 'nope'"),
        ({**RAW, "steer_langs": ["zh"]}, "tasks.reading.steer_langs: 'zh'"),
        ({**RAW, "plot_metric": "bleu"}, "tasks.reading.plot_metric: 'bleu'"),
        ({**RAW, "source": {"kind": "hub"}}, "tasks.reading.source: .*'path' is required"),
        (
            {**RAW, "langs": ["vi"], "conditions": ["deactivate-activate"]},
            "tasks.reading.langs: 'vi'",
        ),
    ]
    for raw, message in bad:
        with pytest.raises(TaskConfigError, match=message):
            resolve_task("reading", raw, CONFIG)
    assert unsteered_condition(["activate", "baseline"], CONFIG["conditions"]) == "baseline"
    assert unsteered_condition(["activate"], CONFIG["conditions"]) is None


def toy_selection() -> tuple[NeuronSet, LanguageTables]:
    rng = np.random.default_rng(0)
    masks = {
        lang: [np.array(sorted(rng.choice(48, 5, replace=False))) for _ in range(3)]
        for lang in LANGS
    }
    neurons = NeuronSet(languages=LANGS, n_layers=3, width=48, masks=masks)
    tables = LanguageTables(
        act_mean={lang: rng.normal(0, 3, (3, 48)) for lang in LANGS},
        p_active={lang: rng.uniform(0, 1, (3, 48)) for lang in LANGS},
    )
    return neurons, tables


def test_the_grid_resolves_source_to_the_test_and_target_to_the_steered_language():
    neurons, tables = toy_selection()
    items = load_task_items("nli", {"kind": "builtin"}, ["en", "de"], 2)
    steps = parse_condition("da", CONFIG["conditions"]["deactivate-activate"])
    reqs = task_requests(items, ["fr", "en"], SteeredJob(steps, neurons, tables))
    assert len(reqs) == 2 * 2 * 2
    assert [(r.item.lang, r.steer_lang) for r in reqs[::2]] == [
        ("en", "fr"),
        ("en", "en"),
        ("de", "fr"),
        ("de", "en"),
    ]
    expected = build_plan(steps, "de", "fr", neurons, tables)
    got = reqs[4].plan
    assert [(op.op, op.layer) for op in got] == [(op.op, op.layer) for op in expected]
    assert all(np.array_equal(a.values, b.values) for a, b in zip(got, expected))
    # the first steps set the *test* language's (de) neurons, then add the steered one's (fr) μ
    assert np.array_equal(got[0].neurons, neurons.masks["de"][0])
    assert np.array_equal(got[3].neurons, neurons.masks["fr"][0])
    assert np.array_equal(got[3].values, tables.act_mean["fr"][0, neurons.masks["fr"][0]])
    baseline = task_requests(items, ["fr", "en"], SteeredJob(parse_condition("baseline", [])))
    assert [r.steer_lang for r in baseline] == ["none"] * 4 and all(not r.plan for r in baseline)


GENERATION = {"max_new_tokens": 5, "repetition_penalty": 1.1, "stop_strings": ["\n\n"]}


@pytest.mark.parametrize("task", ["translation", "reading"])
def test_job_rows_equal_direct_generation_and_loglik(task, tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    neurons, tables = toy_selection()
    items = load_task_items(task, {"kind": "builtin"}, ["en", "de"], 2)
    steps = parse_condition("activate", CONFIG["conditions"]["activate"])
    reqs = task_requests(items, ["de", "fr"], SteeredJob(steps, neurons, tables))
    frame = run_requests(
        model, tokenizer, task, "activate", reqs, {**GENERATION, "batch_size": 3}, 3, False
    )
    assert frame.height == len(reqs) == 8
    assert frame["source_lang"].to_list() == [r.item.lang for r in reqs]
    assert frame["target_lang"].to_list() == [r.steer_lang for r in reqs]
    for row, req in zip(frame.iter_rows(named=True), reqs):  # one prompt at a time, by hand
        alone = generate(
            model,
            tokenizer,
            [req.item.prompt],
            [req.plan],
            max_new_tokens=5,
            stop_strings=["\n\n"],
            progress=False,
        )
        assert row["output"] == alone[0]
        assert row["references"] == list(req.item.references)
        if task == "reading":
            direct = option_logliks(
                model, tokenizer, [req.item.prompt], [req.item.options], [req.plan]
            )
            np.testing.assert_allclose(row["option_logliks"], direct[0], atol=1e-4)
            assert row["loglik_pred"] == int(np.argmax(direct[0]))
            assert row["parsed_pred"] == reading.predict(req.item, row["output"])
            assert row["gold_index"] == req.item.gold_index
    same = lambda item: replace(item, target_lang=item.reference_lang)  # noqa: E731
    assert [same(i) for i in items_from_frame(frame)] == [same(r.item) for r in reqs]


def mlp_products(model, layer: int, store: list):
    """Record the input of ``down_proj`` in ``layer``: act_fn(gate) * up, so a neuron whose
    activation the plan sets to 0 reads exactly 0 there (one entry per forward pass)."""
    return model.model.layers[layer].mlp.down_proj.register_forward_pre_hook(
        lambda _m, args: store.append(args[0].detach().clone())
    )


def test_generation_positions_steer_exactly_the_prompt_or_the_new_tokens(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    items = load_task_items("translation", {"kind": "builtin"}, ["de", "zh"], 2)
    idx = [3, 7, 20]
    plan = [NeuronOp("set", 1, np.array(idx), np.zeros(3))]
    generation = {"max_new_tokens": 4, "repetition_penalty": 1.1, "stop_strings": []}
    runs, frames = {}, {}
    for scope in ("none", "prompt", "generated"):
        reqs = [
            TaskRequest(it, "fr", [] if scope == "none" else plan)
            for lst in items.values()
            for it in lst
        ]
        passes = []
        handle = mlp_products(model, 1, passes)
        settings = {**generation, "batch_size": 4, "positions": "all" if scope == "none" else scope}
        frames[scope] = run_requests(model, tokenizer, "translation", "c", reqs, settings, 4, False)
        handle.remove()
        runs[scope] = passes
    base, prompt, generated = runs["none"], runs["prompt"], runs["generated"]
    # one batch: the prefill over the 4 left-padded prompts, then one pass per new token
    assert [p.shape[1] > 1 for p in base] == [True] + [False] * (len(base) - 1)
    assert len(base) > 1 and [len(r) for r in (prompt, generated)] == [len(base)] * 2
    # prompt: the prefill equals the unsteered one with exactly the set neurons at 0 ...
    expected = base[0].clone()
    expected[..., idx] = 0.0
    assert torch.equal(prompt[0], expected)
    # ... and the decoding steps leave them alone
    assert all((p[..., idx] != 0).all() for p in prompt[1:])
    # generated: the prefill is the unsteered one bit for bit, every new token has them at 0;
    # the first new token (picked by the unsteered prefill) is the unsteered pass but for them
    assert torch.equal(generated[0], base[0])
    assert all((p[..., idx] == 0).all() for p in generated[1:])
    expected = base[1].clone()
    expected[..., idx] = 0.0
    assert torch.equal(generated[1], expected)
    # and the outputs are those of generate() with the same scope
    for scope in ("prompt", "generated"):
        frame = frames[scope]
        direct = generate(
            model,
            tokenizer,
            frame["prompt"].to_list(),
            [plan] * frame.height,
            max_new_tokens=4,
            positions=scope,
            progress=False,
        )
        assert frame["output"].to_list() == direct


def test_multiple_choice_option_logliks_take_the_position_scope(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    neurons, tables = toy_selection()
    items = load_task_items("nli", {"kind": "builtin"}, ["en"], 2)
    steps = parse_condition("activate", CONFIG["conditions"]["activate"])
    reqs = task_requests(items, ["de"], SteeredJob(steps, neurons, tables))
    prompts, options = [r.item.prompt for r in reqs], [list(r.item.options) for r in reqs]
    plans = [r.plan for r in reqs]
    got = {}
    for scope in ("all", "prompt", "generated"):
        generation = {**GENERATION, "batch_size": 2, "positions": scope}
        frame = run_requests(model, tokenizer, "nli", "activate", reqs, generation, 2, False)
        got[scope] = frame["option_logliks"].to_list()
        direct = option_logliks(model, tokenizer, prompts, options, plans, positions=scope)
        np.testing.assert_allclose(got[scope], direct, atol=1e-4)
    assert not np.allclose(got["prompt"], got["generated"], atol=1e-3)


def generations(task: str, rows: list[dict]) -> pl.DataFrame:
    base = {"task": task, "prompt": "p", "reference_lang": None}
    return pl.DataFrame([{**base, **row} for row in rows])


def test_scores_and_improvements_by_hand():
    golds = [["Paris"], ["blue", "dark blue"]]

    def rows(condition, steer, outputs, lang="en"):
        return [
            {
                "item_id": str(i),
                "source_lang": lang,
                "target_lang": steer,
                "condition": condition,
                "output": out,
                "references": golds[i],
                "reference_lang": lang,
            }
            for i, out in enumerate(outputs)
        ]

    base = generations("qa", rows("baseline", "none", ["Paris", "red"]))
    steered = generations(
        "qa",
        rows("activate", "de", ["paris.", "the dark blue"])
        + rows("activate", "fr", ["London", "blue sky"]),
    )
    scores = task_scores([("none", base), ("lape-1", steered)], "m", "qa", baseline="baseline")

    def value(selection, steer, metric):
        row = scores.filter(
            (pl.col("selection") == selection)
            & (pl.col("steer_lang") == steer)
            & (pl.col("metric") == metric)
        )
        assert row.height == 1
        return row["value"][0]

    # EM: baseline 1/2; de: "paris." = Paris, "the dark blue" = "dark blue" (articles dropped)
    assert value("none", "none", "exact_match") == pytest.approx(50.0)
    assert value("lape-1", "de", "exact_match") == pytest.approx(100.0)
    assert value("lape-1", "fr", "exact_match") == pytest.approx(0.0)
    # F1 of "blue sky" vs "blue": p = 1/2, r = 1 -> 2/3; "London" -> 0
    assert value("lape-1", "fr", "f1") == pytest.approx(100 * (0 + 2 / 3) / 2)
    assert value("lape-1", "de", "exact_match_improvement") == pytest.approx(50.0)
    assert value("lape-1", "fr", "f1_improvement") == pytest.approx(100 / 3 - 50.0)
    assert set(scores.columns) == {
        "model",
        "selection",
        "task",
        "condition",
        "test_lang",
        "steer_lang",
        "metric",
        "value",
        "n",
    }
    assert (
        scores.filter(pl.col("condition") == "baseline")["metric"].str.contains("improve").sum()
        == 0
    )
    assert set(scores["n"]) == {2}


def test_multiple_choice_scores_parsed_and_loglik_accuracy():
    items = [
        TaskItem(f"q{i}", "en", "p", (c,), reading.OPTIONS, g, ("w", "x", "y", "z"))
        for i, (c, g) in enumerate([("x", 1), ("z", 3), ("w", 0)])
    ]
    frame = pl.DataFrame(
        {
            "item_id": [it.item_id for it in items],
            "task": "reading",
            "source_lang": "en",
            "target_lang": "none",
            "condition": "baseline",
            "prompt": "p",
            "output": ["B", "I think C", "???"],  # right, wrong, unparsed
            "references": [list(it.references) for it in items],
            "reference_lang": "en",
            "options": [list(it.options) for it in items],
            "choices": [list(it.choices) for it in items],
            "gold_index": [1, 3, 0],
            "option_logliks": [[-3, -1, -2, -4], [-1, -2, -3, -1], [-1, -1, -2, -2]],
        },
        schema_overrides={"option_logliks": pl.List(pl.Float64)},
    )
    scores = task_scores([("none", frame)], "m", "reading")
    got = dict(zip(scores["metric"], scores["value"]))
    # parsed: B right, C wrong, ??? unparsed -> 1/3; loglik argmax (first of ties): 1, 0, 0
    assert got["accuracy"] == pytest.approx(100 / 3)
    assert got["parse_rate"] == pytest.approx(200 / 3)
    assert got["accuracy_loglik"] == pytest.approx(200 / 3)


def test_shipped_configs_pass_the_section_schemas_and_typos_do_not():
    import yaml
    from conftest import REPO
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schemas = REPO / "workflow" / "schemas"
    for path in ("config/config.yaml", "config/paper.yaml", ".test/config/config.yaml"):
        config = yaml.safe_load((REPO / path).read_text())
        validate(config["tasks"], str(schemas / "tasks.schema.yaml"))
        validate(config["fallback"], str(schemas / "fallback.schema.yaml"))
        for name, raw in config["tasks"].items():  # and the checks beyond the schema
            assert resolve_task(name, raw, config)["task"] == name
    with pytest.raises(WorkflowError):
        validate({"qa": {**RAW, "max_item": 3}}, str(schemas / "tasks.schema.yaml"))
    for scope in ("all", "prompt", "generated"):
        validate(
            {"qa": {**RAW, "generation": {"positions": scope}}}, str(schemas / "tasks.schema.yaml")
        )
    with pytest.raises(WorkflowError):
        validate(
            {"qa": {**RAW, "generation": {"positions": "both"}}}, str(schemas / "tasks.schema.yaml")
        )
    with pytest.raises(WorkflowError):
        validate({"selections": ["lape-1"], "value": "low"}, str(schemas / "fallback.schema.yaml"))
