"""A real one-node SLURM 22.05 cluster with fake GPUs, for tests/test_slurm.py and CI.

    python tests/slurm/cluster.py start [--gpus 4]   # install if needed, configure, start, wait
    python tests/slurm/cluster.py status
    python tests/slurm/cluster.py stop [munged slurmctld slurmd]

Debian 12 as root, no systemd: munged, slurmctld and slurmd run as plain daemons (package
postinst scripts may not start services in containers). No cgroups (``proctrack/linuxproc``,
``task/none``), no accounting daemon (``MinJobAge=600`` keeps finished jobs visible to
``squeue``, which the Snakemake plugin then polls). The GPUs are GRES whose device files are
symlinks to /dev/null: SLURM schedules them and sets ``CUDA_VISIBLE_DEVICES``, nothing real is
behind them. ``start`` is idempotent: it reuses what is installed and running and restarts the
daemons only when the generated config changed. It prints one JSON line on stdout:
``{"started": [...], "node": ..., "state": ..., "gpus": ...}``.

Exit codes: 0 ready, 1 failed, 3 unavailable here (not root, no apt-get, packages not
installable) so that tests skip instead of failing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
ETC = Path("/etc/slurm")
STATE_DIR = Path("/var/lib/slurm/slurmctld")
SPOOL_DIR = Path("/var/lib/slurm/slurmd")
FAKE_GPU_DIR = Path("/var/lib/slurm/fake-gpus")
LOG_DIR = Path("/var/log/slurm")
MUNGE_KEY = Path("/etc/munge/munge.key")
PID_FILES = {
    "munged": Path("/run/munge/munged.pid"),
    "slurmctld": Path("/run/slurmctld.pid"),
    "slurmd": Path("/run/slurmd.pid"),
}
PARTITION = "debug"
GPU_TYPE = "fake"
READY_STATES = ("idle", "mixed", "allocated", "completing")


class Unavailable(Exception):
    """This machine cannot host the cluster (the tests skip)."""


def say(message: str) -> None:
    print(f"[slurm-cluster] {message}", file=sys.stderr, flush=True)


def run(*cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def hostname() -> str:
    return socket.gethostname().split(".")[0]


def running_pid(name: str) -> int | None:
    """The pid in the daemon's pid file if that process is alive."""
    try:
        pid = int(PID_FILES[name].read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def stop(name: str) -> None:
    """Stop one daemon by the pid in its pid file (SIGTERM, then SIGKILL after 5 s)."""
    pid = running_pid(name)
    if pid is not None:
        say(f"stopping {name} (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    PID_FILES[name].unlink(missing_ok=True)


def ensure_packages() -> None:
    if all(shutil.which(exe) for exe in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    if not shutil.which("apt-get") or not Path("/etc/debian_version").is_file():
        raise Unavailable("SLURM is not installed and this is not a Debian system with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    say("installing " + " ".join(PACKAGES))
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = result.stderr.strip().splitlines()[-1:] or ["?"]
            raise Unavailable(f"apt-get cannot install {' '.join(PACKAGES)}: {tail[0]}")


def start_munge(started: list[str]) -> None:
    if not MUNGE_KEY.is_file() or MUNGE_KEY.stat().st_size == 0:
        say("creating the munge key")
        if run("mungekey", "--create", f"--keyfile={MUNGE_KEY}", check=False).returncode != 0:
            MUNGE_KEY.write_bytes(os.urandom(1024))
    shutil.chown(MUNGE_KEY, "munge", "munge")
    MUNGE_KEY.chmod(0o400)
    for directory, mode in (
        ("/run/munge", 0o755),
        ("/var/lib/munge", 0o700),
        ("/var/log/munge", 0o700),
    ):
        Path(directory).mkdir(parents=True, exist_ok=True)
        shutil.chown(directory, "munge", "munge")
        Path(directory).chmod(mode)
    if running_pid("munged") is None:
        say("starting munged")
        for stale in Path("/run/munge").glob("munge.socket.2*"):
            stale.unlink()
        run("runuser", "-u", "munge", "--", "/usr/sbin/munged", f"--pid-file={PID_FILES['munged']}")
        started.append("munged")
    for _ in range(50):
        token = run("munge", "-n", check=False)
        if token.returncode == 0:
            check = subprocess.run(["unmunge"], input=token.stdout, capture_output=True, text=True)
            if check.returncode == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("munge does not work (munge -n | unmunge fails)")


def slurm_conf(host: str, gpus: int) -> str:
    detected = run("slurmd", "-C").stdout
    memory = int(detected.split("RealMemory=")[1].split()[0])
    gres = f" Gres=gpu:{GPU_TYPE}:{gpus}" if gpus else ""
    lines = [
        "# written by langarith tests/slurm/cluster.py: one-node test cluster",
        "ClusterName=langarith-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        "SlurmUser=slurm",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CryptoType=crypto/munge",
        "MpiDefault=none",
        f"StateSaveLocation={STATE_DIR}",
        f"SlurmdSpoolDir={SPOOL_DIR}",
        f"SlurmctldPidFile={PID_FILES['slurmctld']}",
        f"SlurmdPidFile={PID_FILES['slurmd']}",
        f"SlurmctldLogFile={LOG_DIR}/slurmctld.log",
        f"SlurmdLogFile={LOG_DIR}/slurmd.log",
        "# no cgroups here: plain process tracking, no task binding",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=512",
        "SchedulerType=sched/backfill",
        "# no accounting: squeue must keep finished jobs long enough for the Snakemake plugin",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "MinJobAge=600",
        "ReturnToService=2",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        "InactiveLimit=0",
        "KillWait=5",
        *(["GresTypes=gpu"] if gpus else []),
        # a little below what slurmd detects: a node reporting less than configured is drained
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} "
        f"RealMemory={memory * 9 // 10}{gres} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


def gres_conf(host: str, gpus: int) -> str:
    if not gpus:
        return "# no GRES\n"
    # SLURM 22.05 counts a GPU only with a File= that is a character device (Count= alone
    # registers 0 and drains the node); a symlink to /dev/null passes the check.
    FAKE_GPU_DIR.mkdir(parents=True, exist_ok=True)
    for i in range(gpus):
        link = FAKE_GPU_DIR / f"gpu{i}"
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
    return (
        "# written by langarith tests/slurm/cluster.py: fake GPUs, /dev/null behind each\n"
        "AutoDetect=off\n"
        f"NodeName={host} Name=gpu Type={GPU_TYPE} File={FAKE_GPU_DIR}/gpu[0-{gpus - 1}]\n"
    )


def write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    path.chmod(0o644)
    return True


def node_state(host: str) -> str:
    result = run("sinfo", "-h", "-n", host, "-o", "%T", check=False)
    return (result.stdout.split() or [""])[0]


def start(gpus: int) -> dict:
    if os.geteuid() != 0:
        raise Unavailable("starting SLURM daemons needs root")
    ensure_packages()
    started: list[str] = []
    start_munge(started)

    host = hostname()
    ETC.mkdir(parents=True, exist_ok=True)
    for directory in (LOG_DIR, STATE_DIR):
        directory.mkdir(parents=True, exist_ok=True)
        shutil.chown(directory, "slurm", "slurm")
    SPOOL_DIR.mkdir(parents=True, exist_ok=True)
    changed = write_if_changed(ETC / "slurm.conf", slurm_conf(host, gpus))
    changed |= write_if_changed(ETC / "gres.conf", gres_conf(host, gpus))
    if changed and (running_pid("slurmctld") or running_pid("slurmd")):
        say("the config changed: restarting the SLURM daemons")
        stop("slurmd")
        stop("slurmctld")

    if running_pid("slurmctld") is None:
        say("starting slurmctld")
        run("/usr/sbin/slurmctld")  # daemonizes and writes its pid file
        started.append("slurmctld")
    for _ in range(100):
        if "UP" in run("scontrol", "ping", check=False).stdout:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"slurmctld does not answer; see {LOG_DIR}/slurmctld.log")
    if running_pid("slurmd") is None:
        say("starting slurmd")
        run("/usr/sbin/slurmd")
        started.append("slurmd")

    state = ""
    for attempt in range(150):
        state = node_state(host)
        if state.rstrip("*~#") in READY_STATES:
            break
        if state.startswith(("down", "drain", "fail")) and attempt % 10 == 0:
            # state saved by an earlier run (e.g. a GRES mismatch) survives restarts
            run("scontrol", "update", f"NodeName={host}", "State=RESUME", check=False)
        time.sleep(0.2)
    else:
        raise RuntimeError(f"node {host} is not ready (state {state!r}); see {LOG_DIR}")
    return {"started": started, "node": host, "state": state, "gpus": gpus}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("daemons", nargs="*", help="stop: only these (default: all three)")
    parser.add_argument("--gpus", type=int, default=4, help="fake GPUs on the node (default 4)")
    args = parser.parse_args(argv)
    if args.action == "status":
        for name in PID_FILES:
            pid = running_pid(name)
            print(f"{name}: " + (f"running (pid {pid})" if pid else "not running"))
        return 0
    if args.action == "stop":
        for name in ("slurmd", "slurmctld", "munged"):
            if not args.daemons or name in args.daemons:
                stop(name)
        return 0
    try:
        print(json.dumps(start(args.gpus)), flush=True)
    except Unavailable as err:
        say(f"unavailable: {err}")
        return 3
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        say(f"failed: {err}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
