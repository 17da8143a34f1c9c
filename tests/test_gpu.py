"""GPU slots on one box (langarith.workflow.gpu): real processes contending for lock files of a fake
pool, a scheduler-set CUDA_VISIBLE_DEVICES left alone, and the startup guard in a real
Snakemake dry-run."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from langarith.workflow import gpu
from langarith.workflow.gpu import GpuClaimError, claim_gpus

# A job stand-in: claim the GPUs, report them, hold them until stdin closes.
HOLDER = textwrap.dedent(
    """
    import logging, os, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    from langarith.workflow.gpu import claim_gpus
    claim = claim_gpus(int(sys.argv[1]))
    print(claim.source, os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
    sys.stdin.read()
    claim.release()
    """
)


@pytest.fixture
def job_env(tmp_path) -> dict[str, str]:
    """The environment of a job on a box whose pool is 4 fake GPUs, outside any scheduler."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LANGARITH_GPU_", "SLURM_", "CUDA_"))
    }
    env["LANGARITH_GPU_POOL"] = "0,1,2,3"
    env["LANGARITH_GPU_LOCK_DIR"] = str(tmp_path / "locks")
    return env


class Holder:
    """One claiming process: ``line()`` is its report, ``logged()`` watches its log (stderr),
    ``release()`` lets it exit."""

    def __init__(self, env: dict[str, str], n: int = 1):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(n)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self.seen = {"stdout": b"", "stderr": b""}

    def _read_until(self, stream: str, done, timeout: float) -> bool:
        """Read ``stream`` (stdout/stderr) until ``done(bytes so far)`` or ``timeout`` s."""
        pipe = getattr(self.proc, stream)
        deadline = time.monotonic() + timeout
        while not done(self.seen[stream]):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                return False
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:  # the process closed it (exited)
                return done(self.seen[stream])
            self.seen[stream] += chunk
        return True

    def line(self, timeout: float = 20.0) -> str | None:
        """The report line, or None if none came within ``timeout`` seconds."""
        if not self._read_until("stdout", lambda b: b"\n" in b, timeout):
            return None
        return self.seen["stdout"].decode().splitlines()[0].strip()

    def device(self, timeout: float = 20.0) -> str:
        line = self.line(timeout)
        assert line is not None, f"no claim within {timeout} s"
        source, device = line.split()
        assert source == "lock"
        return device

    def logged(self, text: str, timeout: float = 20.0) -> bool:
        return self._read_until("stderr", lambda b: text.encode() in b, timeout)

    def release(self) -> tuple[int, str]:
        self.proc.stdin.close()
        self.proc.wait(timeout=20)
        self.seen["stderr"] += self.proc.stderr.read()
        return self.proc.returncode, self.seen["stderr"].decode()

    def kill(self) -> None:
        self.proc.kill()


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(env: dict[str, str], n: int = 1) -> Holder:
        holder = Holder(env, n)
        started.append(holder)
        return holder

    yield start
    for holder in started:
        if holder.proc.poll() is None:
            holder.kill()
            holder.proc.wait()


def run_claim(env: dict[str, str], n: int = 1, timeout: float = 30) -> subprocess.CompletedProcess:
    """A claim that exits at once: prints what it got, or fails."""
    code = HOLDER.replace("sys.stdin.read()", "")
    return subprocess.run(
        [sys.executable, "-c", code, str(n)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_four_concurrent_jobs_get_four_different_devices(job_env, holders):
    jobs = [holders(job_env) for _ in range(4)]
    assert sorted(job.device() for job in jobs) == ["0", "1", "2", "3"]


def test_a_fifth_job_waits_until_a_slot_is_released(job_env, holders):
    jobs = [holders(job_env) for _ in range(4)]
    devices = [job.device() for job in jobs]
    fifth = holders(job_env)
    assert fifth.logged("GPU: waiting for 1 free slot(s) of 0,1,2,3"), "the fifth job did not wait"
    assert fifth.line(timeout=1.0) is None, "the fifth job got a slot while all four were held"
    assert fifth.proc.poll() is None
    freed = devices[2]
    returncode, _ = jobs[2].release()
    assert returncode == 0
    assert fifth.device(timeout=10) == freed
    _, log = fifth.release()
    assert f"GPU: claimed CUDA_VISIBLE_DEVICES={freed} from the pool 0,1,2,3" in log


def test_the_timeout_option_fails_with_one_line(job_env, holders):
    jobs = [holders(job_env) for _ in range(4)]
    for job in jobs:
        job.device()
    start = time.monotonic()
    result = run_claim({**job_env, "LANGARITH_GPU_TIMEOUT": "0.5"})
    assert time.monotonic() - start < 15
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    expected = "langarith.workflow.gpu.GpuClaimTimeout: no 1 free GPU slot(s) of 0,1,2,3"
    assert last.startswith(expected)
    assert "within 0.5 s" in last and "pid=" in last  # names the holders


def test_a_killed_holder_frees_its_slot(job_env, holders):
    jobs = [holders(job_env) for _ in range(4)]
    devices = [job.device() for job in jobs]
    jobs[1].proc.send_signal(signal.SIGKILL)
    jobs[1].proc.wait(timeout=10)
    result = run_claim({**job_env, "LANGARITH_GPU_TIMEOUT": "5"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lock", devices[1]]


def test_multi_gpu_claims_are_all_or_nothing(job_env, holders):
    three = holders(job_env, n=3)
    got = three.device().split(",")
    assert len(set(got)) == 3
    # one slot is free but a job needing two must neither take it nor keep it while failing
    two = run_claim({**job_env, "LANGARITH_GPU_TIMEOUT": "0.5"}, n=2)
    assert two.returncode != 0 and "GpuClaimTimeout: no 2 free GPU slot(s)" in two.stderr
    one = run_claim({**job_env, "LANGARITH_GPU_TIMEOUT": "0"}, n=1)
    assert one.returncode == 0, one.stderr
    assert one.stdout.split()[1] == ({"0", "1", "2", "3"} - set(got)).pop()


def test_a_scheduler_set_visible_devices_is_kept_untouched(job_env, holders):
    slurm_env = {**job_env, "CUDA_VISIBLE_DEVICES": "3", "SLURM_JOB_ID": "77"}
    kept = holders(slurm_env)
    assert kept.line() == "scheduler 3"
    # it took no lock: four ordinary jobs still get all four devices, 3 included
    jobs = [holders(job_env) for _ in range(4)]
    assert sorted(job.device() for job in jobs) == ["0", "1", "2", "3"]
    _, log = kept.release()
    assert "GPU: keeping CUDA_VISIBLE_DEVICES=3 set by SLURM job 77 (1 requested)" in log
    two = run_claim({**job_env, "CUDA_VISIBLE_DEVICES": "1,2"}, n=2)
    assert two.stdout.split() == ["scheduler", "1,2"]


def test_an_inherited_wider_visible_set_becomes_the_pool(job_env, holders):
    env = {k: v for k, v in job_env.items() if k != "LANGARITH_GPU_POOL"}
    env["CUDA_VISIBLE_DEVICES"] = "4,6"
    jobs = [holders(env) for _ in range(2)]
    assert sorted(job.device() for job in jobs) == ["4", "6"]


def test_zero_gpus_set_nothing_and_take_no_lock(job_env, tmp_path):
    result = run_claim(job_env, n=0)
    assert result.stdout.split() == ["none", "<unset>"]
    assert not (tmp_path / "locks").exists()


def test_no_pool_means_the_cpu(job_env, tmp_path):
    env = {k: v for k, v in job_env.items() if k != "LANGARITH_GPU_POOL"}
    env["PATH"] = str(tmp_path)  # no nvidia-smi
    result = run_claim(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["cpu", "<unset>"]
    assert "no GPU pool" in result.stderr


def test_nvidia_smi_gives_the_default_pool(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa)"\n'
        'echo "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb)"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("LANGARITH_GPU_POOL", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu.default_pool() == ("nvidia-smi", ("0", "1"))


def test_impossible_requests_fail_at_once(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(GpuClaimError, match=r"5 GPUs requested but the pool .* has only 4"):
        claim_gpus(5, pool="0,1,2,3", lock_dir=tmp_path)
    with pytest.raises(GpuClaimError, match="lists a device twice"):
        claim_gpus(1, pool="0,1,1", lock_dir=tmp_path)
    monkeypatch.setenv("LANGARITH_GPU_TIMEOUT", "soon")
    with pytest.raises(GpuClaimError, match="LANGARITH_GPU_TIMEOUT='soon' is not a number"):
        claim_gpus(1, pool="0", lock_dir=tmp_path)


def test_job_logging_claims_before_the_job_and_releases_after(tmp_path, monkeypatch):
    from langarith.workflow.jobs import job_logging

    monkeypatch.setenv("LANGARITH_GPU_POOL", "5")
    monkeypatch.setenv("LANGARITH_GPU_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    lock = tmp_path / "locks" / "gpu-5.lock"

    def slot_is_free() -> bool:
        fd = os.open(lock, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: conflicts
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    log_file = tmp_path / "job.log"
    with job_logging(str(log_file), gpus=1):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
        assert not slot_is_free()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert slot_is_free()
    assert "GPU: claimed CUDA_VISIBLE_DEVICES=5 from the pool 5" in log_file.read_text()


def test_fake_visible_devices_do_not_send_the_model_to_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a real GPU is visible: this checks the CPU fallback")
    code = "from langarith.model.loading import resolve_device; print(resolve_device('auto'))"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cpu"


# --- the startup guard, in real Snakemake dry-runs (a few seconds each: marked slow) --------

GUARD_SNAKEFILE = """
import sys

from langarith.workflow.settings import ConfigError, check_gpus

try:  # as check_everything does in workflow/rules/common.smk
    check_gpus(workflow, {{"models": {{"tiny": {{"gpus": {gpus}}}}}}})
except ConfigError as err:
    sys.exit(f"langarith: config error: {{err}}")


rule gpu_job:
    output:
        "out.txt",
    resources:
        gpu={gpus},
    shell:
        "touch {{output}}"
"""


def dry_run(tmp_path: Path, gpus: int, *args: str, env: dict | None = None):
    (tmp_path / "Snakefile").write_text(GUARD_SNAKEFILE.format(gpus=gpus))
    cmd = [sys.executable, "-m", "snakemake", "-n", "-d", str(tmp_path), *args]
    cmd += ["-s", str(tmp_path / "Snakefile")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    return result, result.stdout + result.stderr


WARNING = "langarith: warning: models.tiny.gpus asks for 1 GPU(s) per job but --resources gpu=N"


@pytest.mark.slow
def test_guard_warns_when_a_local_run_has_no_gpu_cap(tmp_path):
    result, out = dry_run(tmp_path, 1, "--cores", "1")
    assert result.returncode == 0, out
    assert WARNING in out


@pytest.mark.slow
def test_guard_is_quiet_with_a_cap_or_without_gpu_rules(tmp_path):
    result, out = dry_run(tmp_path, 1, "--cores", "1", "--resources", "gpu=1")
    assert result.returncode == 0 and "langarith" not in out, out
    result, out = dry_run(tmp_path, 0, "--cores", "1")
    assert result.returncode == 0 and "langarith" not in out, out


@pytest.mark.slow
def test_guard_fails_when_the_cap_is_below_one_job(tmp_path):
    result, out = dry_run(tmp_path, 2, "--cores", "1", "--resources", "gpu=1")
    assert result.returncode != 0
    assert "langarith: config error: --resources gpu=1 is less than the 2 GPU(s) per job" in out


@pytest.mark.slow
def test_guard_warns_when_the_cap_exceeds_the_pool(tmp_path):
    env = {**os.environ, "LANGARITH_GPU_POOL": "0,1"}
    result, out = dry_run(tmp_path, 1, "--cores", "1", "--resources", "gpu=4", env=env)
    assert result.returncode == 0, out
    assert "--resources gpu=4 but LANGARITH_GPU_POOL has only 2 device(s)" in out


@pytest.mark.slow
def test_guard_is_quiet_on_a_cluster(tmp_path):
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed")
    result, out = dry_run(tmp_path, 1, "--executor", "slurm", "--jobs", "4")
    assert result.returncode == 0, out
    assert "langarith" not in out
