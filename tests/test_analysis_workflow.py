"""The analysis, findings, logit lens, quality and calibration outputs of the shared tiny run
(``conftest.tiny_dag``)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from conftest import REPO

from langarith.analysis.findings import VERDICTS

pytestmark = pytest.mark.slow


def test_neuron_tables_and_figures(tiny_dag):
    workdir = tiny_dag.workdir
    for selection in ("lape-10", "lape-20"):
        base = workdir / f"results/analysis/tiny/{selection}/neurons"
        per_language = pl.read_parquet(base / "per_language.parquet")
        neurons = pl.read_parquet(workdir / f"results/neurons/tiny/{selection}.parquet")
        assert per_language["n"].sum() == neurons.height
        overlap = pl.read_parquet(base / "overlap.parquet")
        diagonal = overlap.filter(pl.col("lang_a") == pl.col("lang_b"))
        assert dict(diagonal.select("lang_a", "shared").iter_rows()) == dict(
            per_language.select("lang", "n").iter_rows()
        )
        for name in ("layers", "depth", "overlap", "scripts", "sharing"):
            png = workdir / f"results/figures/tiny/{selection}/neurons/{name}.png"
            assert png.read_bytes()[:4] == b"\x89PNG"


def test_findings_table_has_every_claim_with_a_verdict(tiny_dag):
    workdir = tiny_dag.workdir
    table = pl.read_parquet(workdir / "results/findings/tiny.parquet")
    claims = set(table["claim_id"])
    assert {
        "deeper-layers",
        "non-latin-specialised",
        "related-overlap",
        "additive-beats-replacement",
        "residual-beats-neurons",
        "high-resource-easier",
        "cross-lingual-steering-helps",
        "fallback-language",
    } <= claims
    assert set(table["verdict"]) <= set(VERDICTS)
    # tasks and fallback in this run: both measured, recomputed below from their files
    # (a run without them, "not measurable here": tests/test_findings_claims.py)
    measured = ["cross-lingual-steering-helps", "fallback-language"]
    rows = table.filter(pl.col("claim_id").is_in(measured))
    assert rows.height == 2 and "not measurable here" not in set(rows["verdict"])
    value = dict(table.select("claim_id", "value").iter_rows())
    assert value["cross-lingual-steering-helps"] == pytest.approx(best_task_gain(workdir))
    assert value["fallback-language"] == pytest.approx(fallback_share(workdir, source="en"))
    # additive − replacement: the success rates recomputed from the language-ID files
    success = {}
    for condition in ("deactivate-activate", "deactivate-replace", "residual"):
        langid = pl.read_parquet(
            workdir / f"results/langid/tiny/lape-10/forcing/{condition}.parquet"
        )
        success[condition] = (langid["pred_lang"] == langid["target_lang"]).mean()
    claim = table.filter(pl.col("claim_id") == "additive-beats-replacement")
    assert claim["value"][0] == pytest.approx(
        success["deactivate-activate"] - success["deactivate-replace"]
    )
    claim = table.filter(pl.col("claim_id") == "residual-beats-neurons")  # vs the main condition
    assert claim["value"][0] == pytest.approx(success["residual"] - success["deactivate-activate"])
    # the neuron claims once per selection, the findings selection (lape-10) in the summary
    present = table.filter(pl.col("claim_id") == "deeper-layers")
    assert sorted(present["selection"]) == ["lape-10", "lape-20"]
    assert present["value"].is_not_null().all()
    text = (workdir / "results/findings/tiny.md").read_text()
    assert text.startswith("# Findings") and "| claim (paper) |" in text


def best_task_gain(workdir) -> float:
    """The largest gain of a cross-lingual steered cell over its test language's baseline, in
    the default metric of each task (analysis.task_metrics)."""
    metric = {"translation": "chrf++", "qa": "f1", "reading": "accuracy", "nli": "accuracy"}
    gains = []
    for task, name in metric.items():
        scores = pl.read_parquet(workdir / f"results/scores/tiny/{task}.parquet")
        rows = scores.filter(pl.col("metric") == name).iter_rows(named=True)
        rows = [r for r in rows if r["test_lang"] != "all" and r["steer_lang"] != "all"]
        base = {r["test_lang"]: r["value"] for r in rows if r["condition"] == "baseline"}
        gains += [
            r["value"] - base[r["test_lang"]]
            for r in rows
            if r["condition"] != "baseline" and r["test_lang"] != r["steer_lang"]
        ]
    assert gains
    return max(gains)


def fallback_share(workdir, source: str) -> float:
    """The largest share of fallback answers not in ``source`` over the deactivation steps,
    minus the share with nothing deactivated (from the per-language counts)."""
    dist = pl.read_parquet(workdir / "results/fallback/tiny/lape-10/languages.parquet")
    shares = {}
    for row in dist.iter_rows(named=True):
        other, total = shares.get(row["deactivated"], (0, 0))
        shares[row["deactivated"]] = (
            other + row["count"] * (row["pred_lang"] != source),
            total + row["count"],
        )
    ratio = {step: other / total for step, (other, total) in shares.items()}
    return max(v for step, v in ratio.items() if step != "") - ratio[""]


def test_quality_lens_and_calibration_outputs(tiny_dag):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    summary = pl.read_parquet(workdir / "results/quality/tiny/forcing.parquet")
    overall = summary.filter(pl.col("target_lang") == "all")
    assert set(overall["condition"]) == set(config["forcing"]["conditions"])
    assert (overall["success_and_fluent"] <= overall["success_rate"]).all()
    quality = "results/quality/tiny/lape-10/forcing/deactivate-activate.parquet"
    per_output = pl.read_parquet(workdir / quality)
    assert {"repetition", "distinct_2", "perplexity", "pred_lang"} <= set(per_output.columns)
    assert per_output.filter(pl.col("output") != "")["perplexity"].min() > 1
    # relevance: the model encoder against the unsteered answers; the baseline is its own reference
    assert 0 <= per_output["relevance"].min() and per_output["relevance"].max() <= 1
    baseline = pl.read_parquet(workdir / "results/quality/tiny/none/forcing/baseline.parquet")
    empty = pl.col("output").str.strip_chars() == ""
    assert baseline.filter(~empty)["relevance"].min() == pytest.approx(1.0)
    for row in summary.iter_rows(named=True):
        s, r = row["success_rate"], row["mean_relevance"]
        assert row["steering_score"] == pytest.approx(2 * s * r / (s + r) if s + r else 0.0)
    validation = pl.read_parquet(workdir / "results/quality/tiny/relevance_validation.parquet")
    assert sorted(validation["lang"]) == sorted(set(config["languages"]) - {"en"})
    assert validation["n_documents"].to_list() == [12] * 4  # quality.relevance.max_documents
    assert validation["auc"].is_between(0, 1).all()
    lens = pl.read_parquet(workdir / "results/logit_lens/tiny/lape-10/deactivate-activate.parquet")
    assert set(lens["target_lang"]) == {"de", "zh"} and set(lens["steered"]) == {True, False}
    assert lens.height == 6 * 2 * 2 * 3  # questions x targets x (un)steered x layers
    calibration = json.loads((workdir / "results/calibration/tiny/lape-10.json").read_text())
    assert set(calibration["targets"]) == set(config["languages"])  # "all": forcing targets
    for choice in calibration["targets"].values():
        assert choice["alpha"] in config["quality"]["calibration"]["grid"]


def test_the_calibrated_condition_runs_and_its_alpha_is_in_the_pack(tiny_dag):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    calibration = json.loads((workdir / "results/calibration/tiny/lape-10.json").read_text())
    scores = pl.read_parquet(workdir / "results/scores/tiny/forcing.parquet")
    cells = scores.filter(
        (pl.col("condition") == "calibrated")
        & (pl.col("metric") == "success_rate")
        & (pl.col("test_lang") != "all")
    )
    # one cell per forcing source and calibrated target
    sources, targets = config["forcing"]["sources"], config["languages"]
    assert sorted(cells.select("test_lang", "steer_lang").rows()) == sorted(
        (s, t) for s in sources for t in targets
    )
    pack = json.loads((workdir / "results/packs/tiny/lape-10/pack.json").read_text())
    assert pack["calibration"]["alpha"] == {
        target: choice["alpha"] for target, choice in calibration["targets"].items()
    }
    assert pack["calibration"]["condition"] == calibration["condition"]


def test_native_prompting_asks_each_target_in_its_own_language(tiny_dag):
    """Every forcing target's own forcing questions, unsteered: the prompts are the question
    file's, the answers to the English and German questions equal the unsteered forcing
    condition's (same prompt, same settings, another job), and the rates are the shares of
    the judged answers, counted here."""
    import csv

    workdir, config = tiny_dag.workdir, tiny_dag.config
    outputs = pl.read_parquet(workdir / "results/quality/tiny/native_outputs.parquet")
    scores = pl.read_parquet(workdir / "results/quality/tiny/native.parquet")
    with open(REPO / "resources/prompts/forcing.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    expected = {
        (r["lang"], int(r["question_idx"])): f"Q: {r['question']} \nA:"
        for r in rows
        if r["lang"] in config["languages"]
    }
    got = {
        (r["target_lang"], r["question_idx"]): r["prompt"] for r in outputs.iter_rows(named=True)
    }
    assert got == expected
    assert (outputs["source_lang"] == outputs["target_lang"]).all()
    baseline = pl.read_parquet(workdir / "results/generations/tiny/none/forcing/baseline.parquet")
    for source in config["forcing"]["sources"]:
        plain = {
            r["question_idx"]: r["output"]
            for r in baseline.filter(
                (pl.col("source_lang") == source) & (pl.col("target_lang") == source)
            ).iter_rows(named=True)
        }
        native = {
            r["question_idx"]: r["output"]
            for r in outputs.filter(pl.col("target_lang") == source).iter_rows(named=True)
        }
        assert native == plain and len(native) == 6
    assert scores["lang"].to_list() == list(config["languages"])  # targets: all
    max_repetition = config["quality"]["max_repetition"]
    for row in scores.iter_rows(named=True):
        answers = outputs.filter(pl.col("target_lang") == row["lang"]).to_dicts()
        in_lang = [a["pred_lang"] == row["lang"] for a in answers]
        fluent = [a["repetition"] <= max_repetition for a in answers]
        assert row["n"] == len(answers) == 6
        assert row["native_rate"] == pytest.approx(sum(in_lang) / 6)
        assert row["native_fluent_rate"] == pytest.approx(
            sum(i and f for i, f in zip(in_lang, fluent)) / 6
        )
    png = workdir / "results/figures/tiny/quality/native.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
