"""benchmarks/gpu_check.py checks itself on the CPU (``--dry-run``): every family, one JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO


def test_gpu_check_dry_run_passes_on_the_cpu():
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run",
        "--tokens", "96", "--chunk", "48", "--batch", "2", "--prompts", "2", "--new-tokens", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["ok"] and out["dry_run"] and out["device"] == "cpu"
    tiny = {name: m for name, m in out["models"].items() if name.startswith("tiny-")}
    assert set(tiny) == {"tiny-llama", "tiny-mistral", "tiny-cohere", "tiny-gemma3"}
    for model in tiny.values():
        assert model["record"]["ok"] and model["record"]["tokens"] == 96
        assert model["steer"]["identical_outputs"] == "2/2"
        assert model["record"]["bf16_tokens_per_s"] > 0
