"""A real snakemake run of the tiny config (.test/) on a tiny local model and a corpus of the
repository's own text, and the config checks that must fail before any job runs."""

from __future__ import annotations

import html
import json
import re
import subprocess
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import REPO, repo_corpus, snakemake_argv, write_config
from test_conventions import REPORT_CATEGORIES

pytestmark = pytest.mark.slow


def tiny_config(model_dir: Path) -> dict:
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["corpus"]["path"] = str(repo_corpus())
    config["models"]["tiny"]["source"]["path"] = str(model_dir)
    return config


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True):
    configfile = write_config(workdir, config)
    cmd = snakemake_argv(workdir, configfile, "--resources", "gpu=1", *args)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_llama_dir):
    workdir = tmp_path_factory.mktemp("workflow")
    config = tiny_config(tiny_llama_dir)
    snakemake(workdir, config)
    return workdir, config


def test_the_whole_dag_runs_and_writes_every_output(tiny_run):
    workdir, _ = tiny_run
    for lang in ["en", "de", "fr", "zh", "es"]:
        stats = pl.read_parquet(workdir / f"results/activations/tiny/{lang}.parquet")
        assert stats.columns == ["layer", "neuron", "n_tokens", "n_active", "act_sum", "act_sq_sum"]
        assert stats.height == 3 * 48
        assert stats["n_tokens"].unique().to_list() == [2000]  # the budget binds
    for selection in ["lape-10", "lape-20"]:
        neurons = pl.read_parquet(workdir / f"results/neurons/tiny/{selection}.parquet")
        assert neurons.height > 0  # an empty selection would steer nothing
        assert set(neurons["lang"]) <= {"en", "de", "fr", "zh", "es"}
        assert neurons["layer"].is_between(0, 2).all() and neurons["neuron"].is_between(0, 47).all()
        assert (workdir / f"results/neurons/tiny/{selection}.pt").is_file()
    scores = pl.read_parquet(workdir / "results/scores/tiny/forcing.parquet")
    assert set(scores["condition"]) == {"baseline", "activate", "deactivate-activate"}
    overall = scores.filter((pl.col("test_lang") == "all") & (pl.col("metric") == "success_rate"))
    assert overall.height == 3
    assert all(0.0 <= v <= 1.0 for v in overall["value"])
    # 2 sources x 5 targets x 6 questions per condition
    cells = scores.filter((pl.col("test_lang") != "all") & (pl.col("metric") == "success_rate"))
    assert cells.group_by("condition").agg(pl.col("n").sum())["n"].to_list() == [60, 60, 60]
    # every score recomputed from the language-ID file of its condition
    for condition, selection in [
        ("baseline", "none"),
        ("activate", "lape-10"),
        ("deactivate-activate", "lape-10"),
    ]:
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
    for path in [
        "results/figures/tiny/none/forcing/baseline.png",
        "results/figures/tiny/lape-10/forcing/activate.png",
        "results/figures/tiny/lape-10/forcing/deactivate-activate.png",
    ]:
        assert (workdir / path).read_bytes()[:4] == b"\x89PNG"


def test_generations_and_langid_follow_the_schema(tiny_run):
    workdir, _ = tiny_run
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


def test_a_second_run_has_nothing_to_do(tiny_run):
    workdir, config = tiny_run
    result = snakemake(workdir, config, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


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


def test_report_shows_every_figure_with_its_caption(tiny_run, tmp_path):
    workdir, config = tiny_run
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


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(languages=["en", "xx"]), "languages"),
        (lambda c: c["selections"]["lape-10"].update(top_rate=1.5), "top_rate"),
        (lambda c: c["forcing"].update(sources=["ko"]), "forcing.sources: 'ko'"),
        (lambda c: c["forcing"].update(conditions=["nope"]), "forcing.conditions: 'nope'"),
        (
            lambda c: c["conditions"].update(bad=[{"op": "add", "lang": "target", "value": "x"}]),
            "conditions.bad[0]",
        ),
        (
            lambda c: c["models"]["tiny"]["source"].update(path="/no/such/model"),
            "models.tiny.source.path",
        ),
    ],
)
def test_bad_config_fails_before_any_job_with_one_line(tmp_path, tiny_llama_dir, edit, message):
    config = tiny_config(tiny_llama_dir)
    edit(config)
    result = snakemake(tmp_path, config, "--dry-run", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
