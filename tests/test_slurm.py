"""The workflow on a real one-node SLURM cluster with 4 fake GPUs (tests/slurm/cluster.py),
through `--workflow-profile profiles/slurm`, against a local run of the same config.

Needs root and Debian's slurm packages (installed on first use, ~10 s); skips otherwise.
To stay within a few minutes on 2 CPUs the tiny config is cut to its core (the sections the
schema requires), three languages and two forcing conditions; only the neuron selections and
the forcing scores are built; and the SLURM run starts from the local run's prepared corpus
and model (copied): SLURM runs the 10 recording, selection, generation, language-ID and
scoring jobs. Each costs two Python start-ups (the job step's snakemake and the script), which
dominate on the tiny model; at most two jobs run at once on the 2-CPU node.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import REPO, repo_corpus, snakemake_argv

pytestmark = pytest.mark.slow

CLUSTER = REPO / "tests" / "slurm" / "cluster.py"
LANGS = ["en", "de", "fr"]
CONDITIONS = ["baseline", "activate"]
TARGETS = [
    "results/neurons/tiny/lape-10.parquet",
    "results/neurons/tiny/lape-20.parquet",
    "results/scores/tiny/forcing.parquet",
]
GPU_RULES = {"record_activations", "generate_forcing"}
SLURM_TIMEOUT = 900  # seconds, for `timeout -k 10`: a lost job must not hang the suite
KEEPING = re.compile(r"GPU: keeping CUDA_VISIBLE_DEVICES=(\S+) set by SLURM job (\d+)")


def small_tiny_config(model_dir: Path) -> dict:
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    config = {key: config[key] for key in schema["required"]}  # the optional analyses go
    config["corpus"]["path"] = str(repo_corpus())
    config["models"]["tiny"]["source"]["path"] = str(model_dir)
    config["models"]["tiny"]["gpus"] = 1  # record/generate jobs ask SLURM for one GPU
    config["languages"] = LANGS
    config["forcing"]["conditions"] = CONDITIONS
    return config


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    # one CPU per generation job, in both runs (same threads, same numbers), so that two
    # of them fit the 2-CPU SLURM node at once
    threads = ("--set-threads", "generate_forcing=1")
    return snakemake_argv(workdir, workdir / "config.yaml", *threads, *args, targets=TARGETS)


def run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        why = "timed out" if result.returncode in (124, 137) else f"exit {result.returncode}"
        raise AssertionError(f"snakemake {why}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("the SLURM test needs root (it installs and starts slurmctld and slurmd)")
    if shutil.which("apt-get") is None or not Path("/etc/debian_version").is_file():
        pytest.skip("the SLURM test needs a Debian system with apt-get")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed (see envs/requirements.lock)")
    result = subprocess.run(
        [sys.executable, str(CLUSTER), "start", "--gpus", "4"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode == 3:
        pytest.skip(f"no SLURM here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, f"cluster setup failed:\n{result.stderr[-3000:]}"
    info = json.loads(result.stdout.strip().splitlines()[-1])
    yield info
    if info["started"]:  # leave the machine as we found it
        subprocess.run([sys.executable, str(CLUSTER), "stop", *info["started"]], timeout=60)


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory, tiny_llama_dir):
    """(local workdir, slurm workdir, slurm snakemake output, slurm run seconds)."""
    config = small_tiny_config(tiny_llama_dir)
    local = tmp_path_factory.mktemp("local")
    (local / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run(snakemake_cmd(local, "--resources", "gpu=1"), cwd=local, timeout=900)

    slurm = tmp_path_factory.mktemp("slurm")
    (slurm / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copytree(local / "resources", slurm / "resources")  # corpus + model, mtimes kept
    small = "mem_mb=1000"  # the profile's 64 GB would not fit the test node
    start = time.monotonic()
    try:
        result = run(
            [
                "timeout",
                "-k",
                "10",
                str(SLURM_TIMEOUT),
                *snakemake_cmd(
                    slurm,
                    "--workflow-profile",
                    str(REPO / "profiles" / "slurm"),
                    "--default-resources",
                    small,
                    "runtime=10",
                    "--set-resources",
                    f"record_activations:{small}",
                    f"generate_forcing:{small}",
                    f"prepare_model:{small}",
                    "--slurm-init-seconds-before-status-checks",
                    "2",
                    "--slurm-keep-successful-logs",
                    "--latency-wait",
                    "5",
                ),
            ],
            cwd=slurm,  # the plugin puts .snakemake/slurm_logs under the current directory
            timeout=SLURM_TIMEOUT + 30,
        )
    except (AssertionError, subprocess.TimeoutExpired):
        cancel_leftover_jobs(slurm)
        raise
    return local, slurm, result.stdout + result.stderr, time.monotonic() - start


def slurm_jobs(workdir: Path) -> dict[str, list[tuple[str, str]]]:
    """rule -> [(wildcards, SLURM job id)] from the plugin's per-job log files."""
    jobs: dict[str, list[tuple[str, str]]] = {}
    for log in sorted((workdir / ".snakemake" / "slurm_logs").glob("rule_*/*/*.log")):
        rule = log.parent.parent.name.removeprefix("rule_")
        jobs.setdefault(rule, []).append((log.parent.name, log.stem))
    return jobs


def cancel_leftover_jobs(workdir: Path) -> None:
    """scancel this run's SLURM jobs (by id) after a failed or timed-out run."""
    ids = [job_id for entries in slurm_jobs(workdir).values() for _, job_id in entries]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def scontrol(job_id: str) -> str:
    result = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, f"scontrol does not know job {job_id}: {result.stderr}"
    return result.stdout


def test_jobs_went_through_sbatch_and_only_gpu_rules_asked_for_gpus(runs):
    _, slurm, _, seconds = runs
    jobs = slurm_jobs(slurm)
    assert {"record_activations", "select_neurons", "generate_forcing"} <= set(jobs)
    assert {"identify_language", "score_forcing"} <= set(jobs)
    assert sorted(w for w, _ in jobs["record_activations"]) == [f"tiny_{x}" for x in sorted(LANGS)]
    assert len(jobs["generate_forcing"]) == len(CONDITIONS)
    for rule, entries in jobs.items():
        for _, job_id in entries:
            info = scontrol(job_id)
            assert "JobState=COMPLETED" in info, info
            assert f"Comment=rule_{rule}_" in info
            if rule in GPU_RULES:  # `resources: gpu=1` became `sbatch --gpus=1`
                assert "TresPerJob=gres:gpu:1" in info, info
            else:
                assert not re.search(r"TresPer\w+=\S*gpu", info), info
    print(f"SLURM run: {sum(map(len, jobs.values()))} jobs in {seconds:.0f} s")


def test_gpu_jobs_kept_the_devices_slurm_gave_them(runs):
    local, slurm, _, _ = runs
    jobs = slurm_jobs(slurm)
    logs = {
        "record_activations": [slurm / f"logs/record_activations/tiny/{x}.log" for x in LANGS],
        "generate_forcing": [
            slurm / f"logs/generate/tiny/{selection}/forcing/{condition}.log"
            for selection, condition in [("none", "baseline"), ("lape-10", "activate")]
        ],
    }
    for rule, paths in logs.items():
        ids = {job_id for _, job_id in jobs[rule]}
        seen = set()
        for path in paths:
            match = KEEPING.search(path.read_text())
            assert match, f"{path} does not log the kept CUDA_VISIBLE_DEVICES"
            device, job_id = match.groups()
            assert device in {"0", "1", "2", "3"}
            seen.add(job_id)
        assert seen == ids  # each job logged its own SLURM job id
    # a non-GPU rule claims nothing; the local run, with no GPU pool, ran on the CPU
    assert "GPU:" not in (slurm / "logs/select_neurons/tiny/lape-10.log").read_text()
    assert "no GPU pool" in (local / "logs/record_activations/tiny/en.log").read_text()


def test_outputs_equal_the_local_run(runs):
    local, slurm, _, _ = runs
    for target in TARGETS:
        a, b = pl.read_parquet(local / target), pl.read_parquet(slurm / target)
        assert a.height > 0
        assert a.equals(b), f"{target} differs between the local and the SLURM run"
