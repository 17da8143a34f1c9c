"""A real snakemake run of the analysis and quality rules on the tiny config (.test/)."""

from __future__ import annotations

import json

import polars as pl
import pytest
from test_workflow import snakemake, tiny_config

from langarith.analysis.findings import VERDICTS

pytestmark = pytest.mark.slow

TARGETS = [
    "results/findings/tiny.md",
    "results/figures/tiny/lape-10/neurons/overlap.png",
    "results/figures/tiny/lape-10/logit_lens/deactivate-activate.png",
    "results/figures/tiny/quality/forcing.png",
    "results/figures/tiny/lape-10/calibration.png",
    "results/figures/tiny/lape-10/forcing/calibrated.png",
    "results/packs/tiny/lape-10",
]
# a flag first: the helper's `--resources` would swallow the targets otherwise
TARGETING = ["--nolock", *TARGETS]


def small_config(model_dir) -> dict:
    """The tiny config cut to what these rules need (every job costs an interpreter start)."""
    config = tiny_config(model_dir)
    for section in ("tasks", "fallback"):
        config.pop(section, None)
    config["languages"] = ["en", "de"]
    config["selections"] = {"lape-10": config["selections"]["lape-10"]}
    config["conditions"]["deactivate-replace"] = [
        {"op": "set", "lang": "source", "value": 0.0},
        {"op": "replace", "lang": "target", "value": "mean"},
    ]
    config["conditions"]["calibrated"] = [
        {"op": "set", "lang": "source", "value": 0.0},
        {"op": "add", "lang": "target", "value": "mean", "strength": "calibrated"},
    ]
    config["forcing"].update(
        conditions=["deactivate-activate", "deactivate-replace", "calibrated"], sources=["en"]
    )
    config["analysis"]["logit_lens"]["targets"] = ["de"]
    config["quality"]["calibration"]["targets"] = "all"  # the forcing targets: de, en
    return config


@pytest.fixture(scope="module")
def analysis_run(tmp_path_factory, tiny_llama_dir):
    workdir = tmp_path_factory.mktemp("analysis")
    config = small_config(tiny_llama_dir)
    snakemake(workdir, config, *TARGETING)
    return workdir, config


def test_neuron_tables_and_figures(analysis_run):
    workdir, _ = analysis_run
    for selection in ("lape-10",):
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


def test_findings_table_has_every_claim_with_a_verdict(analysis_run):
    workdir, _ = analysis_run
    table = pl.read_parquet(workdir / "results/findings/tiny.parquet")
    claims = set(table["claim_id"])
    assert {
        "deeper-layers",
        "non-latin-specialised",
        "related-overlap",
        "additive-beats-replacement",
        "high-resource-easier",
        "cross-lingual-steering-helps",
        "fallback-language",
    } <= claims
    assert set(table["verdict"]) <= set(VERDICTS)
    # no tasks, no fallback in this config: nothing to measure
    absent = ["cross-lingual-steering-helps", "fallback-language"]
    rows = table.filter(pl.col("claim_id").is_in(absent))
    assert rows.height == 2 and set(rows["verdict"]) == {"not measurable here"}
    # additive − replacement: the success rates recomputed from the language-ID files
    success = {}
    for condition in ("deactivate-activate", "deactivate-replace"):
        langid = pl.read_parquet(
            workdir / f"results/langid/tiny/lape-10/forcing/{condition}.parquet"
        )
        success[condition] = (langid["pred_lang"] == langid["target_lang"]).mean()
    claim = table.filter(pl.col("claim_id") == "additive-beats-replacement")
    assert claim["value"][0] == pytest.approx(
        success["deactivate-activate"] - success["deactivate-replace"]
    )
    present = table.filter(pl.col("claim_id") == "deeper-layers")
    assert present.height == 1 and present["value"][0] is not None
    text = (workdir / "results/findings/tiny.md").read_text()
    assert text.startswith("# Findings") and "| claim (paper) |" in text


def test_quality_lens_and_calibration_outputs(analysis_run):
    workdir, config = analysis_run
    summary = pl.read_parquet(workdir / "results/quality/tiny/forcing.parquet")
    overall = summary.filter(pl.col("target_lang") == "all")
    assert set(overall["condition"]) == {"deactivate-activate", "deactivate-replace", "calibrated"}
    assert (overall["success_and_fluent"] <= overall["success_rate"]).all()
    quality = "results/quality/tiny/lape-10/forcing/deactivate-activate.parquet"
    per_output = pl.read_parquet(workdir / quality)
    assert {"repetition", "distinct_2", "perplexity", "pred_lang"} <= set(per_output.columns)
    assert per_output.filter(pl.col("output") != "")["perplexity"].min() > 1
    lens = pl.read_parquet(workdir / "results/logit_lens/tiny/lape-10/deactivate-activate.parquet")
    assert set(lens["target_lang"]) == {"de"} and set(lens["steered"]) == {True, False}
    assert lens.height == 6 * 1 * 2 * 3  # questions x targets x (un)steered x layers
    calibration = json.loads((workdir / "results/calibration/tiny/lape-10.json").read_text())
    assert set(calibration["targets"]) == {"de", "en"}
    for choice in calibration["targets"].values():
        assert choice["alpha"] in config["quality"]["calibration"]["grid"]


def test_the_calibrated_condition_runs_and_its_alpha_is_in_the_pack(analysis_run):
    workdir, _ = analysis_run
    calibration = json.loads((workdir / "results/calibration/tiny/lape-10.json").read_text())
    scores = pl.read_parquet(workdir / "results/scores/tiny/forcing.parquet")
    cells = scores.filter(
        (pl.col("condition") == "calibrated")
        & (pl.col("metric") == "success_rate")
        & (pl.col("test_lang") != "all")
    )
    assert sorted(cells["steer_lang"]) == ["de", "en"]  # one cell per calibrated target
    pack = json.loads((workdir / "results/packs/tiny/lape-10/pack.json").read_text())
    assert pack["calibration"]["alpha"] == {
        target: choice["alpha"] for target, choice in calibration["targets"].items()
    }
    assert pack["calibration"]["condition"] == calibration["condition"]


def test_a_second_run_has_nothing_to_do(analysis_run):
    workdir, config = analysis_run
    result = snakemake(workdir, config, "--dry-run", *TARGETS)
    assert "Nothing to be done" in result.stdout + result.stderr
