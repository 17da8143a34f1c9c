"""The dtype a model is loaded in: a config's ``dtype`` setting resolved on the running machine.

``auto`` is bfloat16 where the hardware multiplies bfloat16 matrices natively, float32 elsewhere:

* a CUDA device of compute capability 8.0 or newer (Ampere on: bf16 tensor cores); older GPUs
  only emulate bf16, so they get float32;
* a CPU with AMX-BF16 or AVX512-BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later):
  detected from the instruction-set flags, never from the platform name. The flags are read
  from torch's own probes (``torch.cpu._is_avx512_bf16_supported``/``_is_amx_tile_supported``,
  the ones its kernels dispatch on) and from ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_bf16``);
  either one suffices. ``torch.backends.cpu.get_cpu_capability()`` is not enough on its own:
  it says ``AVX512`` for CPUs with and without the bf16 instructions. A CPU without them (AVX2
  only, or an ARM or Apple CPU: not measured here) runs bf16 matmuls through conversions,
  slower than float32, so it gets float32;
* any other device (``mps``...): float32.

``float32`` is the setting that reproduces results recorded before ``auto`` existed byte for
byte; ``bfloat16`` and ``float16`` are taken as they are, wherever the job runs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DTYPE_SETTINGS = ("auto", *DTYPES)

# /proc/cpuinfo flags of native bf16 matrix instructions (x86)
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
_CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_flags(path: Path | None = None) -> set[str]:
    """The instruction-set flags of the first CPU in ``/proc/cpuinfo`` (empty where unreadable)."""
    path = path or _CPUINFO
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def _torch_cpu_probes() -> set[str]:
    """The bf16 instruction sets torch's CPU probes report (its private ``torch.cpu._is_*``)."""
    found = set()
    for name, flag in (
        ("_is_avx512_bf16_supported", "avx512_bf16"),
        ("_is_amx_tile_supported", "amx_bf16"),  # every AMX CPU so far has AMX-BF16
    ):
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                found.add(flag)
        except Exception:  # noqa: BLE001 - a probe that fails says nothing: cpuinfo decides
            pass
    return found


@functools.cache
def cpu_bf16_flags() -> tuple[str, ...]:
    """The native bf16 matrix instruction sets of this CPU (``CPU_BF16_FLAGS`` found), sorted."""
    found = (_cpuinfo_flags() | _torch_cpu_probes()) & set(CPU_BF16_FLAGS)
    return tuple(sorted(found))


def cuda_native_bf16(device: torch.device) -> bool:
    """Whether the CUDA ``device`` has bf16 tensor cores (compute capability 8.0 or newer)."""
    major, _minor = torch.cuda.get_device_capability(device)
    return major >= 8


def dtype_choice(name: str, device: torch.device | str) -> tuple[str, str]:
    """``(dtype name, why)`` for the setting ``name`` on ``device`` (see the module docstring)."""
    if name not in DTYPE_SETTINGS:
        raise ValueError(f"dtype {name!r} is not one of {', '.join(DTYPE_SETTINGS)}")
    if name != "auto":
        return name, "set in the config"
    device = torch.device(device)
    if device.type == "cuda":
        if cuda_native_bf16(device):
            return "bfloat16", "auto: a CUDA device with bf16 tensor cores"
        return "float32", "auto: a CUDA device without bf16 tensor cores (compute capability < 8)"
    if device.type == "cpu":
        flags = cpu_bf16_flags()
        if flags:
            return "bfloat16", f"auto: the CPU has native bf16 matmuls ({', '.join(flags)})"
        return "float32", "auto: the CPU has no native bf16 matmuls (no AMX-BF16, AVX512-BF16)"
    return "float32", f"auto: float32 on a {device.type} device"


def resolve_dtype(name: str, device: torch.device | str) -> torch.dtype:
    """The torch dtype of the setting ``name`` (``auto`` or a dtype name) on ``device``."""
    return DTYPES[dtype_choice(name, device)[0]]
