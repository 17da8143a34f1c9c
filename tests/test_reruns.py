"""Partial reruns after config edits: exactly the jobs that depend on the edit are scheduled."""

from __future__ import annotations

import copy
import re

import pytest
from test_workflow import snakemake, tiny_config

pytestmark = pytest.mark.slow


def small_config(model_dir):
    config = tiny_config(model_dir)
    config["languages"] = ["en", "de", "zh"]
    config["selections"] = {"lape-10": {"top_rate": 0.1}, "lape-20": {"top_rate": 0.2}}
    config["conditions"] = {
        "baseline": [],
        "activate": [{"op": "add", "lang": "target", "value": "mean", "strength": 1.0}],
    }
    config["forcing"].update(selections=["lape-10"], conditions=["baseline", "activate"])
    for section in ("tasks", "fallback", "analysis", "quality"):
        config.pop(section, None)
    return config


def scheduled(workdir, config, *targets: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run (of ``targets``, default all) would execute."""
    result = snakemake(workdir, config, "--dry-run", *targets)
    jobs, rule = set(), None
    for line in result.stdout.splitlines():
        match = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if match:
            rule = match.group(1)
            jobs.add((rule, ""))
        elif rule and line.strip().startswith("wildcards:"):
            jobs.discard((rule, ""))
            jobs.add((rule, line.strip().removeprefix("wildcards: ")))
            rule = None
    jobs.discard(("all", ""))
    return jobs


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_llama_dir):
    workdir = tmp_path_factory.mktemp("reruns")
    config = small_config(tiny_llama_dir)
    snakemake(workdir, config)
    return workdir, config


def rules(jobs):
    return sorted({rule for rule, _ in jobs})


def test_nothing_to_do_after_a_run(finished):
    workdir, config = finished
    assert scheduled(workdir, config) == set()


def test_changing_a_ratio_reruns_only_that_selection(finished):
    workdir, config = finished
    edited = copy.deepcopy(config)
    edited["selections"]["lape-10"]["top_rate"] = 0.15
    jobs = scheduled(workdir, edited)
    assert ("select_neurons", "model=tiny, selection=lape-10") in jobs
    assert not any("lape-20" in w for _, w in jobs)
    # the baseline's generations are untouched (its heatmap redraws: the scores file changed)
    regenerated = {w for r, w in jobs if r in ("generate_forcing", "identify_language")}
    assert not any("selection=none" in w for w in regenerated)
    # the selection and everything downstream of it (analyses of it included), nothing upstream
    assert {"select_neurons", "generate_forcing", "identify_language", "score_forcing"} <= set(
        rules(jobs)
    )
    assert not {"record_activations", "fetch_corpus", "prepare_model"} & set(rules(jobs))


def test_adding_a_language_records_only_that_language(finished):
    workdir, config = finished
    edited = copy.deepcopy(config)
    edited["languages"] = ["en", "de", "zh", "fr"]
    jobs = scheduled(workdir, edited)
    recorded = {w for rule, w in jobs if rule == "record_activations"}
    assert recorded == {"model=tiny, lang=fr"}
    assert {w for rule, w in jobs if rule == "fetch_corpus"} == {"corpus=flores, lang=fr"}
    assert "prepare_model" not in rules(jobs)


def test_changing_alpha_of_one_condition_reruns_only_that_condition(finished):
    workdir, config = finished
    edited = copy.deepcopy(config)
    edited["conditions"]["activate"][0]["strength"] = 2.0
    jobs = scheduled(workdir, edited)
    generated = {w for rule, w in jobs if rule == "generate_forcing"}
    assert generated == {"model=tiny, selection=lape-10, condition=activate"}
    assert not {"record_activations", "select_neurons", "fetch_corpus"} & set(rules(jobs))


def test_changing_generation_length_leaves_recording_and_selection(finished):
    workdir, config = finished
    edited = copy.deepcopy(config)
    edited["forcing"]["generation"]["max_new_tokens"] = 4
    jobs = scheduled(workdir, edited)
    assert "generate_forcing" in rules(jobs)
    assert not {"record_activations", "select_neurons", "fetch_corpus"} & set(rules(jobs))
