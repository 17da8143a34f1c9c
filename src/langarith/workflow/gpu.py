"""Give a job its GPUs before CUDA initialises: keep a scheduler's choice or claim free slots.

Snakemake never picks a device: ``--resources gpu=N`` only caps how many GPUs the running jobs
ask for in total. Without more, every GPU job on a multi-GPU box would use device 0. So each
GPU job calls :func:`claim_gpus` (through :func:`langarith.workflow.jobs.job_logging`) before
anything touches CUDA, and the decision is, in this order:

1. ``n == 0``: nothing is set.
2. ``CUDA_VISIBLE_DEVICES`` is already set and lists at most ``n`` devices: a scheduler (SLURM
   sets it for ``--gpus``) or the user chose them. It is kept untouched and logged.
3. Otherwise the job claims ``n`` distinct slots of a pool of device ids: ``LANGARITH_GPU_POOL``
   (e.g. ``"0,1,2,3"``), else an inherited ``CUDA_VISIBLE_DEVICES`` that lists more devices
   than requested (a whole workflow run inside one allocation, or a user who restricted it),
   else one id per line of ``nvidia-smi -L``. No pool means no GPU: the job runs on the CPU
   and nothing is set.

A slot is an exclusive ``fcntl.flock`` on ``<lock dir>/gpu-<id>.lock`` (lock dir:
``LANGARITH_GPU_LOCK_DIR``, default ``/tmp/langarith-gpu-locks``; a subdirectory per SLURM job
when the pool is a SLURM allocation's ``CUDA_VISIBLE_DEVICES``, because two allocations on one
node may number their devices alike). The lock is
held for the job's lifetime and the kernel drops it when the process exits, however it dies,
so a killed job never leaves a stale slot behind (marker files would). Slots are taken all or
none, without holding some while waiting for others, so jobs that need several GPUs cannot
deadlock each other. When too few slots are free the job **waits** (polling, with a log line
now and then) until enough are released; ``LANGARITH_GPU_TIMEOUT`` (seconds) makes it fail with
:class:`GpuClaimTimeout` instead. Waiting is the default because Snakemake's ``gpu`` cap makes a
wait rare (another workflow on the same box, or a cap above the pool size) and short.

Claimed ids are set as ``CUDA_VISIBLE_DEVICES`` (with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` unless
set, so the ids mean what ``nvidia-smi`` shows). Setting the variable never forces CUDA: the
model code still uses the CPU when ``torch.cuda.is_available()`` is False.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POOL_ENV = "LANGARITH_GPU_POOL"
LOCK_DIR_ENV = "LANGARITH_GPU_LOCK_DIR"
TIMEOUT_ENV = "LANGARITH_GPU_TIMEOUT"
DEFAULT_LOCK_DIR = "/tmp/langarith-gpu-locks"
VISIBLE = "CUDA_VISIBLE_DEVICES"

_log = logging.getLogger("langarith")


class GpuClaimError(RuntimeError):
    """The GPU request cannot be met at all (bad pool, too many GPUs, CUDA already started)."""


class GpuClaimTimeout(GpuClaimError):
    """Too few GPU slots became free within ``LANGARITH_GPU_TIMEOUT`` seconds."""


@dataclass
class GpuClaim:
    """What a job got: ``source`` is ``none`` (0 requested), ``scheduler`` (kept the set
    ``CUDA_VISIBLE_DEVICES``), ``lock`` (claimed pool slots) or ``cpu`` (no pool)."""

    requested: int
    source: str
    devices: tuple[str, ...] = ()
    lock_dir: Path | None = None
    _fds: list[int] = field(default_factory=list, repr=False)
    _saved_env: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def held(self) -> bool:
        """True while this process holds lock-file slots."""
        return bool(self._fds)

    def release(self) -> None:
        """Drop the slot locks and restore the variables set by the claim (idempotent)."""
        for fd in self._fds:
            try:
                os.ftruncate(fd, 0)  # clear the holder note first
            except OSError:
                pass
            try:
                os.close(fd)  # closing the last descriptor releases the flock
            except OSError:
                pass
        self._fds.clear()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def __enter__(self) -> GpuClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def parse_devices(text: str, what: str = POOL_ENV) -> tuple[str, ...]:
    """Split a comma-separated device list (``"0,1,3"``; UUIDs work too); reject duplicates."""
    devices = tuple(part.strip() for part in text.split(",") if part.strip())
    if len(set(devices)) != len(devices):
        raise GpuClaimError(f"{what}={text!r} lists a device twice")
    return devices


def nvidia_smi_devices() -> tuple[str, ...]:
    """Indices ``0..k-1`` of the GPUs ``nvidia-smi -L`` lists; empty without a working one."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = subprocess.run(
            [exe, "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    count = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    return tuple(str(i) for i in range(count))


def default_pool(env: Mapping[str, str] | None = None) -> tuple[str, tuple[str, ...]]:
    """The pool a claim draws from and where it came from: ``LANGARITH_GPU_POOL``, else an
    inherited ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi``."""
    env = os.environ if env is None else env
    if env.get(POOL_ENV) is not None:
        return POOL_ENV, parse_devices(env[POOL_ENV])
    if env.get(VISIBLE) is not None:
        return VISIBLE, parse_devices(env[VISIBLE], VISIBLE)
    return "nvidia-smi", nvidia_smi_devices()


def claim_gpus(
    n: int,
    *,
    pool: Sequence[str] | str | None = None,
    lock_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    poll_seconds: float = 0.5,
    logger: logging.Logger | None = None,
) -> GpuClaim:
    """Give this process ``n`` GPUs before CUDA starts (see the module docstring for the rules).

    ``pool``, ``lock_dir`` and ``timeout`` default to ``LANGARITH_GPU_POOL``,
    ``LANGARITH_GPU_LOCK_DIR`` and ``LANGARITH_GPU_TIMEOUT``; ``timeout=None`` and no variable
    means wait for free slots as long as it takes. Call ``release()`` (or use the result as a
    context manager) when the job ends; process exit releases the slots too.
    """
    log = logger or _log
    n = int(n)
    if n < 0:
        raise GpuClaimError(f"cannot request {n} GPUs")
    if n == 0:
        return GpuClaim(requested=0, source="none")

    visible = os.environ.get(VISIBLE)
    if visible is not None:
        kept = parse_devices(visible, VISIBLE)
        if len(kept) <= n:
            slurm_job = os.environ.get("SLURM_JOB_ID")
            by = f"SLURM job {slurm_job}" if slurm_job else "the environment"
            log.info("GPU: keeping %s=%s set by %s (%d requested)", VISIBLE, visible, by, n)
            if len(kept) < n:
                log.warning("GPU: %d requested but %s lists only %d", n, VISIBLE, len(kept))
            return GpuClaim(requested=n, source="scheduler", devices=kept)

    if pool is None:
        origin, devices = default_pool()
    else:
        origin = "argument"
        devices = parse_devices(pool if isinstance(pool, str) else ",".join(pool), "pool")
    if not devices:
        log.info("GPU: %d requested but no GPU pool (%s gives none): running on the CPU", n, origin)
        return GpuClaim(requested=n, source="cpu")
    if n > len(devices):
        raise GpuClaimError(
            f"{n} GPUs requested but the pool from {origin} has only {len(devices)} "
            f"({','.join(devices)})"
        )
    _refuse_if_cuda_started()

    directory = _lock_dir(lock_dir, shared_with_allocation=origin == VISIBLE)
    if timeout is None and os.environ.get(TIMEOUT_ENV):
        timeout = _parse_timeout(os.environ[TIMEOUT_ENV])
    start = time.monotonic()
    next_note = start
    while True:
        fds = _try_claim(directory, devices, n)
        if fds is not None:
            break
        now = time.monotonic()
        if timeout is not None and now - start >= timeout:
            raise GpuClaimTimeout(
                f"no {n} free GPU slot(s) of {','.join(devices)} within {timeout:g} s "
                f"(holders: {_holders(directory, devices)})"
            )
        if now >= next_note:
            log.info(
                "GPU: waiting for %d free slot(s) of %s (holders: %s)",
                n,
                ",".join(devices),
                _holders(directory, devices),
            )
            next_note = now + 60.0
        time.sleep(poll_seconds)

    claimed = tuple(device for device, _ in fds)
    claim = GpuClaim(
        requested=n,
        source="lock",
        devices=claimed,
        lock_dir=directory,
        _fds=[fd for _, fd in fds],
        _saved_env={name: os.environ.get(name) for name in (VISIBLE, "CUDA_DEVICE_ORDER")},
    )
    os.environ[VISIBLE] = ",".join(claimed)
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    log.info(
        "GPU: claimed %s=%s from the pool %s (%s; lock dir %s; waited %.1f s)",
        VISIBLE,
        os.environ[VISIBLE],
        ",".join(devices),
        origin,
        directory,
        time.monotonic() - start,
    )
    return claim


def _parse_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GpuClaimError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if value < 0:
        raise GpuClaimError(f"{TIMEOUT_ENV}={text!r} is negative")
    return value


def _refuse_if_cuda_started() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise GpuClaimError(
            "CUDA is already initialised in this process: claim GPUs before any CUDA call"
        )


def _lock_dir(lock_dir: str | os.PathLike[str] | None, shared_with_allocation: bool) -> Path:
    directory = Path(lock_dir or os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)
    slurm_job = os.environ.get("SLURM_JOB_ID")
    if shared_with_allocation and slurm_job:
        directory = directory / f"slurm-{slurm_job}"
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    if created:
        try:  # shared by every user's jobs, like /tmp itself
            os.chmod(directory, 0o1777)
        except OSError:
            pass
    return directory


def _lock_path(directory: Path, device: str) -> Path:
    return directory / f"gpu-{re.sub(r'[^A-Za-z0-9._-]', '_', device)}.lock"


def _open_lock(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:  # another user's file: flock works on a read-only descriptor too
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchmod(fd, 0o666)
    except OSError:
        pass
    return fd


def _try_claim(directory: Path, devices: Sequence[str], n: int) -> list[tuple[str, int]] | None:
    """Lock ``n`` free slots without blocking, or none at all (no hold-and-wait)."""
    got: list[tuple[str, int]] = []
    for device in devices:
        fd = _open_lock(_lock_path(directory, device))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            continue
        got.append((device, fd))
        if len(got) == n:
            for _, held in got:
                _note_holder(held)
            return got
    for _, fd in got:
        os.close(fd)
    return None


def _note_holder(fd: int) -> None:
    now = datetime.datetime.now().isoformat(timespec="seconds")
    note = f"pid={os.getpid()} host={socket.gethostname()} since={now}\n"
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
    except OSError:  # read-only descriptor: the lock still holds, only the note is missing
        pass


def _holders(directory: Path, devices: Sequence[str]) -> str:
    notes = []
    for device in devices:
        try:
            text = _lock_path(directory, device).read_text().strip()
        except OSError:
            text = ""
        if text:
            notes.append(f"{device}: {text}")
    return "; ".join(notes) or "unknown"


def gpu_resource_problem(
    workflow: Any, gpus_per_job: Mapping[str, int], env: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """``("error" | "warning", message)`` when a local run's ``gpu`` cap does not fit the
    GPUs the models ask for; None when all is well or the check does not apply.

    The check applies to the main Snakemake process of a local run only: job subprocesses
    and cluster runs (``--executor slurm``, where SLURM allocates the devices) are skipped.
    """
    needed = {name: int(n) for name, n in gpus_per_job.items() if int(n) > 0}
    if not needed or not getattr(workflow, "is_main_process", True):
        return None
    if workflow.global_resources["_nodes"].value is not None or not workflow.local_exec:
        return None
    widest = max(needed, key=lambda name: needed[name])
    most = needed[widest]
    if "gpu" not in workflow.global_resources:
        return (
            "warning",
            f"langarith: warning: models.{widest}.gpus asks for {most} GPU(s) per job but "
            "--resources gpu=N was not given, so Snakemake does not cap concurrent GPU jobs "
            "(they queue on GPU slot locks instead); run e.g. `snakemake --cores all "
            "--resources gpu=<number of GPUs>`",
        )
    cap = workflow.global_resources["gpu"].value
    if cap is not None and cap < most:
        return (
            "error",
            f"langarith: --resources gpu={cap} is less than the {most} GPU(s) per job that "
            f"models.{widest}.gpus asks for",
        )
    env = os.environ if env is None else env
    if cap is not None and env.get(POOL_ENV) is not None:
        pool = parse_devices(env[POOL_ENV])
        if pool and cap > len(pool):
            return (
                "warning",
                f"langarith: warning: --resources gpu={cap} but {POOL_ENV} has only "
                f"{len(pool)} device(s): GPU jobs beyond that wait for a free slot",
            )
    return None
