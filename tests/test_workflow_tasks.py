"""The tasks, the fallback experiment and the packs of the shared tiny run (``conftest.tiny_dag``),
checked against direct recomputations from the files the run wrote."""

from __future__ import annotations

import copy
import re
import string

import numpy as np
import polars as pl
import pytest
from conftest import load_tiny
from workflow_run import snakemake

from langarith.core.conditions import build_plan, parse_condition
from langarith.core.plans import NeuronOp
from langarith.experiments.tasks import get_task
from langarith.io.activations import read_tables
from langarith.io.pack import load_pack
from langarith.io.selection import read_selection
from langarith.model.generation import generate

pytestmark = pytest.mark.slow

MODEL, SEL = "tiny", "lape-10"


def targets(config: dict) -> list[str]:
    out = []
    for task, settings in config["tasks"].items():
        out.append(f"results/scores/{MODEL}/{task}.parquet")
        for condition in settings["conditions"]:
            if config["conditions"][condition]:  # steered; the baseline is a column of it
                out.append(f"results/figures/{MODEL}/{SEL}/{task}/{condition}.png")
    out += [
        f"results/fallback/{MODEL}/{SEL}/languages.parquet",
        f"results/figures/{MODEL}/{SEL}/fallback.png",
        f"results/packs/{MODEL}/{SEL}",
    ]
    return out


def generations(workdir, selection, task, condition) -> pl.DataFrame:
    return pl.read_parquet(
        workdir / f"results/generations/{MODEL}/{selection}/{task}/{condition}.parquet"
    )


def test_the_baseline_runs_once_per_test_language_and_steering_covers_the_grid(tiny_dag):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    for task, settings in config["tasks"].items():
        n = settings["max_items"]
        base = generations(workdir, "none", task, "baseline")
        assert base["target_lang"].unique().to_list() == ["none"]
        assert base.group_by("source_lang").len().sort("source_lang")["len"].to_list() == [n] * 2
        assert sorted(base["source_lang"].unique()) == sorted(settings["langs"])
        assert not (workdir / f"results/generations/{MODEL}/{SEL}/{task}/baseline.parquet").exists()
        (condition,) = [c for c in settings["conditions"] if c != "baseline"]
        steered = generations(workdir, SEL, task, condition)
        cells = steered.group_by(["source_lang", "target_lang"]).len()
        assert cells.height == len(settings["langs"]) * len(settings["steer_langs"])
        assert set(cells["len"]) == {n}
        assert set(steered["target_lang"]) == set(settings["steer_langs"])
        if task in ("reading", "nli"):
            assert (
                steered["option_logliks"].list.len().to_list()
                == steered["options"].list.len().to_list()
            )
            assert steered["loglik_pred"].is_not_null().all()


def hand_plan(workdir, test_lang: str, steer_lang: str) -> list[NeuronOp]:
    """deactivate-activate written out from the run's files: set the test language's neurons
    to 0 in every layer, then add the steered language's mean activation (act_sum / n_tokens)
    to its neurons."""
    neurons = pl.read_parquet(workdir / f"results/neurons/{MODEL}/{SEL}.parquet")

    def ids(lang, layer):
        rows = neurons.filter((pl.col("lang") == lang) & (pl.col("layer") == layer))
        return np.sort(rows["neuron"].to_numpy()).astype(np.int64)

    stats = pl.read_parquet(workdir / f"results/activations/{MODEL}/{steer_lang}.parquet").filter(
        pl.col("site") == "mlp"
    )
    mean = {
        (layer, neuron): act_sum / n
        for layer, neuron, act_sum, n in stats.select(
            "layer", "neuron", "act_sum", "n_tokens"
        ).iter_rows()
    }
    plan = []
    for layer in range(3):
        if len(idx := ids(test_lang, layer)):
            plan.append(NeuronOp("set", layer, idx, np.zeros(len(idx))))
    for layer in range(3):
        if len(idx := ids(steer_lang, layer)):
            values = np.array([mean[(layer, int(i))] for i in idx])
            plan.append(NeuronOp("add", layer, idx, values))
    return plan


def test_steered_outputs_equal_generation_under_a_plan_built_by_hand(tiny_dag, tiny_llama_dir):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    task, condition = "qa", "deactivate-activate"  # source -> test language, target -> steered
    settings = config["tasks"][task]
    assert config["conditions"][condition] == [
        {"op": "set", "lang": "source", "value": 0.0},
        {"op": "add", "lang": "target", "value": "mean", "strength": 1.0},
    ]
    model, tokenizer = load_tiny(tiny_llama_dir)
    frame = generations(workdir, SEL, task, condition)
    assert frame.height == (
        len(settings["langs"]) * len(settings["steer_langs"]) * settings["max_items"]
    )
    plans = {}
    for row in frame.iter_rows(named=True):
        key = (row["source_lang"], row["target_lang"])
        if key not in plans:
            plans[key] = hand_plan(workdir, *key)
        direct = generate(
            model,
            tokenizer,
            [row["prompt"]],
            [plans[key]],
            max_new_tokens=settings["generation"]["max_new_tokens"],
            stop_strings=get_task(task).SPEC.stop_strings,
            progress=False,
        )[0]
        assert row["output"] == direct, key
    assert any(plans.values())  # the selection is not empty: something was steered


def squad_normalize(text: str) -> str:
    """SQuAD v1.1's answer normalisation, written out here: lowercase, no ASCII punctuation,
    no articles, single spaces (the run's qa languages, en and de, are written with spaces)."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def expected_cell_metrics(task: str, cell: pl.DataFrame, identify) -> dict[str, float]:
    """The metrics of one cell from the generation columns, without the project's scorers
    (f1, BLEU, chrF++ and nli's per-label rates are left to the unit tests: ``test_task_run``,
    ``test_scoring``). ``identify``: outputs -> predicted language codes."""
    if task == "translation":  # the language-ID rates of the outputs (percent)
        predicted = identify(cell["output"].to_list())
        n = len(predicted)
        reference = sum(p == r for p, r in zip(predicted, cell["reference_lang"]))
        steered = sum(p == s for p, s in zip(predicted, cell["target_lang"]))
        return {"lid_reference_rate": 100.0 * reference / n, "lid_steer_rate": 100.0 * steered / n}
    if task == "qa":
        hits = [
            any(squad_normalize(out) == squad_normalize(gold) for gold in golds)
            for out, golds in zip(cell["output"], cell["references"])
        ]
        return {"exact_match": 100.0 * sum(hits) / len(hits)}
    gold = cell["gold_index"]
    return {  # reading, nli: the parsed answer and the log-likelihood argmax written by the job
        "accuracy": 100.0 * float((cell["parsed_pred"] == gold).fill_null(False).mean()),
        "parse_rate": 100.0 * float(cell["parsed_pred"].is_not_null().mean()),
        "accuracy_loglik": 100.0 * float((cell["loglik_pred"] == gold).mean()),
    }


def test_scores_are_the_generations_scored_and_improvements_are_differences(tiny_dag):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    from langarith.io.langid import LanguageIdentifier

    identifier = LanguageIdentifier(config["langid"]["model"])

    def identify(outputs):
        return [p.lang for p in identifier.predict(outputs)]

    metrics = {
        "translation": {
            "bleu",
            "chrf++",
            "anchor_sentence_bleu",
            "lid_reference_rate",
            "lid_steer_rate",
        },
        "qa": {"exact_match", "f1"},
        "reading": {"accuracy", "accuracy_loglik", "parse_rate"},
        "nli": {
            "accuracy",
            "accuracy_loglik",
            "parse_rate",
            "entailment",
            "neutral",
            "contradiction",
        },
    }
    assert set(config["tasks"]) == set(metrics)  # every task
    for task, settings in config["tasks"].items():
        scores = pl.read_parquet(workdir / f"results/scores/{MODEL}/{task}.parquet")
        (condition,) = [c for c in settings["conditions"] if c != "baseline"]
        langs, steer_langs = settings["langs"], settings["steer_langs"]
        # every cell of the grid once, with every metric, and improvements of the steered ones
        cells = [("none", "baseline", t, "none") for t in langs] + [
            (SEL, condition, t, s) for t in langs for s in steer_langs
        ]
        expected_keys = {(*cell, m) for cell in cells for m in metrics[task]} | {
            (*cell, f"{m}_improvement") for cell in cells[len(langs) :] for m in metrics[task]
        }
        keys = scores.select("selection", "condition", "test_lang", "steer_lang", "metric").rows()
        assert sorted(keys) == sorted(expected_keys)
        assert set(scores["n"]) == {settings["max_items"]}
        value = {key: v for key, v in zip(keys, scores["value"])}
        for selection, cond, test, steer in cells:
            frame = generations(workdir, selection, task, cond)
            cell = frame.filter((pl.col("source_lang") == test) & (pl.col("target_lang") == steer))
            assert cell.height == settings["max_items"]
            for metric, expected in expected_cell_metrics(task, cell, identify).items():
                got = value[(selection, cond, test, steer, metric)]
                assert got == pytest.approx(expected), (task, cond, test, steer, metric)
        base = scores.filter(pl.col("condition") == "baseline")
        steered = scores.filter(
            (pl.col("condition") == condition) & ~pl.col("metric").str.ends_with("_improvement")
        )
        for row in steered.iter_rows(named=True):
            b = base.filter(
                (pl.col("test_lang") == row["test_lang"]) & (pl.col("metric") == row["metric"])
            )["value"][0]
            gain = value[
                (
                    SEL,
                    condition,
                    row["test_lang"],
                    row["steer_lang"],
                    row["metric"] + "_improvement",
                )
            ]
            assert gain == pytest.approx(row["value"] - b, nan_ok=True)


def test_figures_fallback_and_pack(tiny_dag):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    for path in targets(config):
        if path.endswith(".png"):
            assert (workdir / path).read_bytes()[:4] == b"\x89PNG"
    dist = pl.read_parquet(workdir / f"results/fallback/{MODEL}/{SEL}/languages.parquet")
    # the configured languages in the anchor's order (en fr es it pt ru de ar zh ...)
    steps = dist.select("step", "deactivated").unique().sort("step")
    order = ["en", "fr", "es", "de", "zh"]
    assert steps["deactivated"].to_list() == [",".join(order[:k]) for k in range(6)]
    per_step = dist.group_by("step").agg(pl.col("count").sum(), pl.col("share").sum())
    assert set(per_step["count"]) == {config["fallback"]["max_prompts"]}
    assert all(s == pytest.approx(1.0) for s in per_step["share"])
    lid = pl.read_parquet(workdir / f"results/fallback/{MODEL}/{SEL}/langid.parquet")
    assert lid["prompt"][0].endswith("\nA:") and "\nA:" not in lid["prompt"][0][:-3]
    # the pack gives the same plans as the pipeline's own files
    neurons = read_selection(
        workdir / f"results/neurons/{MODEL}/{SEL}.parquet",
        workdir / f"results/neurons/{MODEL}/{SEL}.json",
    )
    tables = read_tables(
        config["languages"],
        [workdir / f"results/activations/{MODEL}/{lang}.parquet" for lang in config["languages"]],
    )
    packed = load_pack(workdir / f"results/packs/{MODEL}/{SEL}")
    steps = parse_condition("da", config["conditions"]["deactivate-activate"])
    for source, target in [("en", "de"), ("fr", "en"), ("de", "de")]:
        a = build_plan(steps, source, target, neurons, tables)
        b = build_plan(steps, source, target, *packed)
        assert [(o.op, o.layer, o.neurons.tolist(), o.values.tolist()) for o in a] == [
            (o.op, o.layer, o.neurons.tolist(), o.values.tolist()) for o in b
        ]


def test_editing_one_task_reruns_only_that_task(tiny_dag, tmp_path):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    edited = copy.deepcopy(config)
    edited["tasks"]["qa"]["max_items"] = 1  # every qa job
    edited["tasks"]["reading"]["steer_langs"] = ["de"]  # the steered reading job, not its baseline
    edited["tasks"]["reading"]["plot_metric"] = "accuracy_loglik"
    # a dry run in the shared working directory, the edited config written outside it
    result = snakemake(
        workdir, edited, "--dry-run", targets=targets(edited), configfile=tmp_path / "edited.yaml"
    )
    text = "\n".join(  # the outputs of the jobs that would run
        line for line in (result.stdout + result.stderr).splitlines() if "output:" in line
    )
    generated = set(re.findall(r"results/generations/tiny/([\w.-]+/\w+/[\w-]+)\.parquet", text))
    rescored = set(re.findall(r"results/scores/tiny/(\w+)\.parquet", text))
    plotted = set(re.findall(r"results/figures/tiny/[\w.-]+/(\w+)/[\w-]+\.png", text))
    assert generated == {
        "none/qa/baseline",
        f"{SEL}/qa/deactivate-activate",
        f"{SEL}/reading/activate",
    }
    assert rescored == {"qa", "reading"} and plotted == {"qa", "reading"}
    assert "fallback" not in text and "packs" not in text
