"""A run killed with SIGKILL loses nothing: rerun with ``--rerun-incomplete``, it completes, its
outputs equal an uninterrupted run's, and no output that had finished before the kill is
touched. Outputs are written atomically (``langarith.io.atomic``: a temporary file, then
``os.replace``), so a killed job never leaves a partial file under an output's final name.

One working directory goes through two kills: the whole Snakemake process group is killed
while a ``record_activations`` job runs, the run is resumed and killed again while a
``generate_forcing`` job runs, then resumed to the end.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_determinism import (
    MODEL,
    assert_no_differences,
    compare_outputs,
    pt_content,
    reference_run,
    run_snakemake,
    small_config,
    snakemake_command,
)

pytestmark = pytest.mark.slow

_JOB = re.compile(r"^(?:local)?rule (\w+):$")
_OUTPUT = re.compile(r"^\s+output: (.+)$")
_JOBID = re.compile(r"^\s+jobid: (\d+)$")
_FINISHED = re.compile(r"^Finished jobid: (\d+)")


def finished_outputs(snakemake_log: str) -> list[str]:
    """Outputs of the jobs Snakemake reported finished, from its console log."""
    outputs: dict[str, list[str]] = {}
    finished: list[str] = []
    current: list[str] = []
    for line in snakemake_log.splitlines():
        if _JOB.match(line):
            current = []
        elif match := _OUTPUT.match(line):
            current = [part.strip() for part in match.group(1).split(",")]
        elif match := _JOBID.match(line):
            outputs[match.group(1)] = current
        elif match := _FINISHED.match(line):
            finished += outputs.get(match.group(1), [])
    return finished


def fingerprint(workdir: Path, outputs: list[str]) -> dict[str, tuple[int, str]]:
    """``(mtime_ns, sha256)`` of every file of ``outputs`` (directories: every file inside)."""
    prints = {}
    for name in outputs:
        path = workdir / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            prints[str(file.relative_to(workdir))] = (file.stat().st_mtime_ns, digest)
    return prints


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run_and_kill(
    workdir: Path, config: dict, watch: str, output_of: Callable[[Path], Path], *args: str
) -> tuple[str, Path]:
    """Run Snakemake in its own process group; SIGKILL the group once a job whose log matches
    ``watch`` has started (its log exists, its output does not). Returns the console log and
    the output of the killed job."""
    console = workdir / f"snakemake-{time.monotonic_ns()}.out"
    cmd = snakemake_command(workdir, config, *args)
    with open(console, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    victim = None
    deadline = time.monotonic() + 600
    try:
        while victim is None:
            if proc.poll() is not None:
                raise AssertionError(
                    f"the run ended before a {watch} job ran:\n{console.read_text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {watch} job started in time")
            for log in sorted(workdir.glob(watch)):
                if not output_of(log).exists():
                    victim = log
                    break
            time.sleep(0.02)
        time.sleep(0.3)  # let it get going: past opening its log, into loading and computing
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for _ in range(100):  # the job processes die with the group
        if not group_alive(proc.pid):
            break
        time.sleep(0.1)
    assert not group_alive(proc.pid), "processes of the killed run are still alive"
    return console.read_text(), output_of(victim)


def check_no_partial_output(workdir: Path, reference: Path) -> list[str]:
    """Every file under an output's final name is complete (equal to the reference run's);
    returns the hidden temporary files the killed jobs left behind."""
    leftovers = []
    for root in ("results", "resources/corpus"):
        for path in sorted((workdir / root).rglob("*")):
            if not path.is_file():
                continue
            name = str(path.relative_to(workdir))
            if any(part.startswith(".") for part in path.relative_to(workdir).parts):
                leftovers.append(name)
                continue
            expected = reference / name
            if name.endswith(".pt"):
                assert pt_content(path) == pt_content(expected), name
            else:
                assert path.read_bytes() == expected.read_bytes(), f"{name} is partial or differs"
    return leftovers


def activation_output(log: Path) -> Path:
    # logs/record_activations/{model}/{lang}.log -> results/activations/{model}/{lang}.parquet
    workdir = log.parents[3]
    return workdir / "results/activations" / log.parent.name / f"{log.stem}.parquet"


def generation_output(log: Path) -> Path:
    # logs/generate/{model}/{selection}/forcing/{condition}.log -> results/generations/...
    workdir = log.parents[5]
    rel = log.relative_to(workdir / "logs" / "generate").with_suffix(".parquet")
    return workdir / "results" / "generations" / rel


def test_killed_runs_resume_and_lose_nothing(tmp_path_factory, tiny_llama_dir):
    reference = reference_run(tmp_path_factory, tiny_llama_dir)
    config = small_config(tiny_llama_dir)
    workdir = tmp_path_factory.mktemp("crash")

    # 1. kill while an activation-recording job runs
    log, killed = run_and_kill(
        workdir, config, f"logs/record_activations/{MODEL}/*.log", activation_output
    )
    assert not killed.exists()
    done_1 = fingerprint(workdir, finished_outputs(log))
    assert any(name.startswith("resources/corpus/") for name in done_1)
    leftovers = check_no_partial_output(workdir, reference)

    # 2. resume; kill while a generation job runs
    run_snakemake(workdir, config, "--unlock")  # a killed Snakemake leaves its lock behind
    log, killed = run_and_kill(
        workdir,
        config,
        f"logs/generate/{MODEL}/*/forcing/*.log",
        generation_output,
        "--rerun-incomplete",
    )
    assert not killed.exists()
    done_2 = fingerprint(workdir, finished_outputs(log))
    assert any(name.startswith("results/activations/") for name in done_2)
    assert set(done_1).isdisjoint(done_2)  # the resumed run redid nothing that had finished
    leftovers += check_no_partial_output(workdir, reference)

    # 3. resume to the end
    run_snakemake(workdir, config, "--unlock")
    run_snakemake(workdir, config, "--rerun-incomplete")
    assert fingerprint(workdir, list(done_1) + list(done_2)) == {**done_1, **done_2}
    assert all(Path(name).name.startswith(".") for name in leftovers), leftovers
    assert_no_differences(compare_outputs(reference, workdir))
