"""Partial reruns after config edits: exactly the jobs that depend on the edit are scheduled.

Dry runs of edited configs in the shared tiny run's working directory (``conftest.tiny_dag``;
the edited config is written outside it, so the run stays as it was)."""

from __future__ import annotations

import copy
import re

import pytest
from workflow_run import snakemake

pytestmark = pytest.mark.slow


def scheduled(workdir, config, *targets: str, configfile=None) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run (of ``targets``, default all) would execute."""
    result = snakemake(workdir, config, "--dry-run", targets=targets, configfile=configfile)
    return jobs_of(result.stdout)


def jobs_of(console: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job (but ``all``) in a Snakemake console log."""
    jobs, rule = set(), None
    for line in console.splitlines():
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


@pytest.fixture
def after_edit(tiny_dag, tmp_path):
    """The jobs a dry run of the shared run's config, changed by ``edit``, would execute."""

    def run(edit) -> set[tuple[str, str]]:
        config = copy.deepcopy(tiny_dag.config)
        edit(config)
        return scheduled(tiny_dag.workdir, config, configfile=tmp_path / "edited.yaml")

    return run


def rules(jobs):
    return sorted({rule for rule, _ in jobs})


def test_nothing_to_do_after_a_run(tiny_dag):
    result = snakemake(tiny_dag.workdir, tiny_dag.config, "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr
    assert jobs_of(result.stdout) == set()


def test_changing_a_ratio_reruns_only_that_selection(after_edit):
    jobs = after_edit(lambda c: c["selections"]["lape-10"].update(top_rate=0.15))
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


def test_adding_a_language_records_only_that_language(after_edit):
    jobs = after_edit(lambda c: c["languages"].append("ru"))
    recorded = {w for rule, w in jobs if rule == "record_activations"}
    assert recorded == {"model=tiny, lang=ru"}
    assert {w for rule, w in jobs if rule == "fetch_corpus"} == {"corpus=flores, lang=ru"}
    assert "prepare_model" not in rules(jobs)


def test_changing_alpha_of_one_condition_reruns_only_that_condition(after_edit):
    jobs = after_edit(lambda c: c["conditions"]["activate"][0].update(strength=2.0))
    generated = {w for rule, w in jobs if rule == "generate_forcing"}
    assert generated == {"model=tiny, selection=lape-10, condition=activate"}
    assert not {"record_activations", "select_neurons", "fetch_corpus"} & set(rules(jobs))


def test_changing_generation_length_leaves_recording_and_selection(after_edit):
    jobs = after_edit(lambda c: c["forcing"]["generation"].update(max_new_tokens=4))
    assert "generate_forcing" in rules(jobs)
    assert not {"record_activations", "select_neurons", "fetch_corpus"} & set(rules(jobs))
