"""The shared run of the whole tiny DAG (``conftest.tiny_dag``: the .test config on a tiny local
model and the repository's own text): every output of ``rule all`` exists, forcing outputs and
the report. A bad config stopping a real Snakemake run in one line: tests/test_config_errors.py."""

from __future__ import annotations

import html
import json
import re

import polars as pl
import pytest
from conftest import REPO
from test_conventions import REPORT_CATEGORIES
from workflow_run import ALL_OUTPUTS, FORCING_CONDITIONS, rule_all_inputs, snakemake

pytestmark = pytest.mark.slow


def test_every_output_of_rule_all_is_made_and_not_empty(tiny_dag):
    assert sorted(rule_all_inputs(tiny_dag.log)) == sorted(ALL_OUTPUTS)
    for name in ALL_OUTPUTS:
        path = tiny_dag.workdir / name
        # a directory output: its files (Snakemake's hidden `.snakemake_timestamp` left out)
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
        else:
            files = [path] if path.is_file() else []
        assert files and all(f.stat().st_size > 0 for f in files), name
        for file in files:
            if file.suffix == ".png":
                assert file.read_bytes()[:4] == b"\x89PNG", file
            elif file.suffix == ".parquet":
                assert pl.read_parquet(file).height > 0, file
            elif file.suffix == ".json":
                assert json.loads(file.read_text()), file


def test_the_provenance_record_is_the_shared_runs(tiny_dag, tiny_llama_dir):
    """What the record holds: tests/test_determinism.py (its own run); here, that it is this
    run's: the config it ran with and the model it read."""
    record = json.loads((tiny_dag.workdir / "results/provenance/tiny.json").read_text())
    assert record["config"]["forcing"]["conditions"] == list(FORCING_CONDITIONS)
    assert record["config"]["languages"] == tiny_dag.config["languages"]
    assert record["model"]["source"] == {"kind": "local", "path": str(tiny_llama_dir)}


def test_the_whole_dag_runs_and_writes_every_output(tiny_dag):
    workdir = tiny_dag.workdir
    for lang in ["en", "de", "fr", "zh", "es"]:
        table = pl.read_parquet(workdir / f"results/activations/tiny/{lang}.parquet")
        assert table.columns == [
            "site", "layer", "neuron", "n_tokens", "n_active", "act_sum", "act_sq_sum",
        ]  # fmt: skip
        stats = table.filter(pl.col("site") == "mlp")
        assert stats.height == 3 * 48
        assert stats["n_tokens"].unique().to_list() == [2000]  # the budget binds
        residual = table.filter(pl.col("site") == "residual")  # the same passes, hidden width
        assert residual.height == 3 * 32 and residual["n_tokens"].unique().to_list() == [2000]
    for selection in ["lape-10", "lape-20"]:
        neurons = pl.read_parquet(workdir / f"results/neurons/tiny/{selection}.parquet")
        assert neurons.height > 0  # an empty selection would steer nothing
        assert set(neurons["lang"]) <= {"en", "de", "fr", "zh", "es"}
        assert neurons["layer"].is_between(0, 2).all() and neurons["neuron"].is_between(0, 47).all()
        assert (workdir / f"results/neurons/tiny/{selection}.pt").is_file()
    scores = pl.read_parquet(workdir / "results/scores/tiny/forcing.parquet")
    assert set(scores["condition"]) == set(FORCING_CONDITIONS)
    overall = scores.filter((pl.col("test_lang") == "all") & (pl.col("metric") == "success_rate"))
    assert overall.height == len(FORCING_CONDITIONS)
    assert all(0.0 <= v <= 1.0 for v in overall["value"])
    # 2 sources x 5 targets x 6 questions per condition
    cells = scores.filter((pl.col("test_lang") != "all") & (pl.col("metric") == "success_rate"))
    per_condition = cells.group_by("condition").agg(pl.col("n").sum())["n"].to_list()
    assert per_condition == [60] * len(FORCING_CONDITIONS)
    # every score recomputed from the language-ID file of its condition
    for condition in FORCING_CONDITIONS:
        selection = "none" if condition == "baseline" else "lape-10"
        lid = pl.read_parquet(
            workdir / f"results/langid/tiny/{selection}/forcing/{condition}.parquet"
        )
        rows = scores.filter(pl.col("condition") == condition)
        value = {
            (r["test_lang"], r["steer_lang"], r["metric"]): r["value"]
            for r in rows.iter_rows(named=True)
        }
        hits = (lid["pred_lang"] == lid["target_lang"]).to_list()
        assert value[("all", "all", "success_rate")] == pytest.approx(sum(hits) / len(hits))
        probs = lid["target_prob"].to_list()
        assert value[("all", "all", "target_prob")] == pytest.approx(sum(probs) / len(probs))
        for (source, target), cell in lid.group_by(["source_lang", "target_lang"]):
            right = sum(p == target for p in cell["pred_lang"])
            assert value[(source, target, "success_rate")] == pytest.approx(right / cell.height)
    for condition in FORCING_CONDITIONS:
        selection = "none" if condition == "baseline" else "lape-10"
        path = f"results/figures/tiny/{selection}/forcing/{condition}.png"
        assert (workdir / path).read_bytes()[:4] == b"\x89PNG"


def test_the_residual_condition_steers_at_the_layer_its_sweep_chose(tiny_dag, tiny_llama_dir):
    """The layer sweep judged both candidate layers on the calibration questions; the forcing
    outputs of the residual condition are those of a residual DiffMean plan at that layer, built
    here by hand from the recorded residual means (μ_target − mean of the others, scaled to the
    mean RMS norm), and differ from the unsteered outputs."""
    import json

    import numpy as np

    from langarith.core.plans import NeuronOp
    from langarith.io.activations import ActivationStats
    from langarith.model.generation import generate
    from langarith.model.loading import load_configured_model

    workdir = tiny_dag.workdir
    sweep = json.loads((workdir / "results/layer_sweep/tiny/lape-10/residual.json").read_text())
    assert [s["layer"] for s in sweep["scores"]] == [0, 2]
    assert [s["n"] for s in sweep["scores"]] == [5 * 6, 5 * 6]  # en x 5 targets x 6 questions
    best = sweep["best_layer"]
    table = pl.read_parquet(workdir / "results/layer_sweep/tiny/lape-10/residual.parquet")
    for score in sweep["scores"]:
        rows = table.filter(pl.col("layer") == score["layer"])
        assert score["success_and_fluent"] == pytest.approx(rows["success_and_fluent"].mean())
        # relevance against the unsteered answers (the tiny config scores relevance)
        assert rows["relevance"].is_between(0.0, 1.0).all()
        assert score["mean_relevance"] == pytest.approx(rows["relevance"].mean())
    langs = ["en", "de", "fr", "zh", "es"]
    residual = {
        lang: ActivationStats.read(workdir / f"results/activations/tiny/{lang}.parquet", "residual")
        for lang in langs
    }
    gen = pl.read_parquet(workdir / "results/generations/tiny/lape-10/forcing/residual.parquet")
    rows = gen.filter((pl.col("source_lang") == "en") & (pl.col("target_lang") == "zh"))
    means = {lang: r.act_sum[best] / r.n_tokens for lang, r in residual.items()}
    rms = np.mean([np.sqrt((r.act_sq_sum[best] / r.n_tokens).sum()) for r in residual.values()])
    direction = means["zh"] - np.mean([means[x] for x in langs if x != "zh"], axis=0)
    values = 0.5 * rms * direction / np.linalg.norm(direction)
    plan = [NeuronOp("add", best, np.arange(32), values, site="residual")]
    loaded = load_configured_model(workdir / "resources/models/tiny", {"dtype": "float32"})
    kwargs = dict(max_new_tokens=6, repetition_penalty=1.1, stop_strings=("\nQ:", "\nA:"))
    prompts = rows["prompt"].to_list()
    expected = generate(
        loaded.model, loaded.tokenizer, prompts, [plan] * len(prompts), progress=False, **kwargs
    )
    assert rows["output"].to_list() == expected
    plain = generate(loaded.model, loaded.tokenizer, prompts, progress=False, **kwargs)
    assert expected != plain


def test_the_prompted_condition_asks_for_the_target_language(tiny_dag):
    from langarith.io.prompts import read_instructions

    instructions = read_instructions(REPO / "resources/prompts/instructions.tsv")
    gen = pl.read_parquet(
        tiny_dag.workdir / "results/generations/tiny/lape-10/forcing/prompted.parquet"
    )
    plain = pl.read_parquet(
        tiny_dag.workdir / "results/generations/tiny/none/forcing/baseline.parquet"
    )
    assert gen.height == plain.height == 60
    for row, base in zip(gen.iter_rows(named=True), plain.iter_rows(named=True)):
        asked = instructions[(row["source_lang"], row["target_lang"])]
        assert row["prompt"] == base["prompt"].replace(" \nA:", f" {asked} \nA:")


def test_generations_and_langid_follow_the_schema(tiny_dag):
    workdir = tiny_dag.workdir
    gen = pl.read_parquet(workdir / "results/generations/tiny/lape-10/forcing/activate.parquet")
    assert gen.columns[:7] == [
        "item_id",
        "task",
        "source_lang",
        "target_lang",
        "condition",
        "question_idx",
        "prompt",
    ]
    assert (
        gen.height == 60
        and gen["prompt"][0].startswith("Q: ")
        and gen["prompt"][0].endswith(" \nA:")
    )
    lid = pl.read_parquet(workdir / "results/langid/tiny/lape-10/forcing/activate.parquet")
    assert {"pred_lang", "pred_prob", "target_prob"} <= set(lid.columns)


def report_variable(page: str, name: str):
    """A JavaScript variable of Snakemake's HTML report: `<script id="name">var name = {...};`."""
    start = page.index(f"var {name} = ", page.index(f'<script id="{name}">'))
    return json.JSONDecoder().raw_decode(page, start + len(f"var {name} = "))[0]


def plain_text(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", markup)).split())


def rendered_caption(template: str, wildcards: dict[str, str]) -> str:
    """A caption file as the report shows it: wildcards filled in, ``literals`` plain."""
    text = re.sub(r"\{\{ snakemake\.wildcards\.(\w+) \}\}", lambda m: wildcards[m[1]], template)
    return " ".join(text.replace("``", "").split())


def test_report_shows_every_figure_with_its_caption(tiny_dag, tmp_path):
    workdir, config = tiny_dag.workdir, tiny_dag.config
    snakemake(workdir, config, "--report", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    results = report_variable(page, "results")
    figures = {str(p.relative_to(workdir)) for p in (workdir / "results/figures").rglob("*.png")}
    assert set(results) == figures
    assert set(report_variable(page, "categories")) == REPORT_CATEGORIES

    captions = {p.name: p.read_text() for p in (REPO / "workflow/report").glob("*.rst")}
    used = set()
    for path, entry in results.items():
        wildcards = dict(
            kv.split("=", 1) for kv in entry["job_properties"]["wildcards"].split(", ")
        )
        shown = plain_text(entry["caption"])
        matches = [
            name
            for name, template in captions.items()
            if set(re.findall(r"wildcards\.(\w+)", template)) <= set(wildcards)
            and rendered_caption(template, wildcards) == shown
        ]
        assert len(matches) == 1, f"{path}: caption {shown[:200]!r} matches {matches}"
        used.update(matches)
    assert used == set(captions)  # the .test config draws every kind of figure
