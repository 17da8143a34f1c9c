"""The paper config builds its DAG offline: `snakemake --dry-run --configfile config/paper.yaml`
needs no network (it runs with a hub that cannot be reached), stays under 5,000 jobs, and runs
the paper's models only (a --configfile replaces the default config instead of being merged
into it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO

pytestmark = pytest.mark.slow


def dry_run(tmp_path, configfile: str, env: dict | None = None) -> str:
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(REPO / configfile), "--dry-run", "--cores", "4",
        "--resources", "gpu=4",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


_PAPER_DRY_RUN: list[str] = []
_PAPER_DRY_RUN_LOCK = threading.Lock()


def paper_dry_run() -> str:
    """The output of the dry run of ``config/paper.yaml``, once per test session (the paper
    run on the local hub compares its rules with it). Run with no hub to reach (a closed port
    on 127.0.0.1), no token and an empty Hugging Face cache, whatever the caller's
    environment: the DAG must build without the network."""
    with _PAPER_DRY_RUN_LOCK:
        if not _PAPER_DRY_RUN:
            with tempfile.TemporaryDirectory() as tmp:
                env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
                env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(Path(tmp) / "hf"))
                _PAPER_DRY_RUN.append(dry_run(Path(tmp) / "run", "config/paper.yaml", env))
        return _PAPER_DRY_RUN[0]


def job_counts(stdout: str) -> Counter:
    """``{rule: count}`` from the job-stats table of a dry run."""
    table = stdout.split("Job stats:")[1].split("total")[0]
    return Counter(
        {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    )


def test_the_paper_dag_builds_offline_with_the_paper_models_only():
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    stdout = paper_dry_run()
    counts = job_counts(stdout)
    assert 0 < sum(counts.values()) < 5000
    models = set(re.findall(r"model=([\w.-]+)", stdout))
    assert models == set(paper["models"])  # not the default's gemma3-270m
    # one recording per (model, language), one selection per (model, ratio)
    n_models, n_langs = len(paper["models"]), len(paper["languages"])
    assert counts["select_neurons"] == n_models * len(paper["selections"])
    assert counts["prepare_model"] == n_models
    recorded = set(re.findall(r"model=([\w.-]+), lang=(\w+)", stdout))
    assert len(recorded) == n_models * n_langs
