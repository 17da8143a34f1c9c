"""``dtype: auto``: bfloat16 where the device multiplies bf16 natively, float32 elsewhere.

The hardware is mocked (the CPU's flags, torch's CPU probes, a CUDA device's capability), so
every branch runs on any machine; ``float32`` loads exactly as before ``auto`` existed.
"""

from __future__ import annotations

import logging

import pytest
import torch

from langarith.model import dtypes
from langarith.model.dtypes import cpu_bf16_flags, dtype_choice, resolve_dtype
from langarith.model.loading import load_model, placement_device, prepare_model

# /proc/cpuinfo flag lines of three CPUs (abridged)
SAPPHIRE_RAPIDS = "fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8"
ICE_LAKE = "fpu sse2 avx avx2 avx512f avx512bw avx512_vnni"  # AVX512 without bf16
ZEN3 = "fpu sse2 avx avx2 fma"


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """``cpu(flags, probes=())``: this CPU has the cpuinfo ``flags`` and torch's probes report
    ``probes``."""

    def set_cpu(flags: str, probes: tuple[str, ...] = ()):
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\n")
        monkeypatch.setattr(dtypes, "_CPUINFO", info)
        monkeypatch.setattr(dtypes, "_torch_cpu_probes", lambda: set(probes))
        cpu_bf16_flags.cache_clear()

    yield set_cpu
    cpu_bf16_flags.cache_clear()


@pytest.mark.parametrize(
    ("flags", "probes", "expected"),
    [
        (SAPPHIRE_RAPIDS, (), "bfloat16"),
        (ICE_LAKE, (), "float32"),
        (ZEN3, (), "float32"),
        (ZEN3 + " avx512_bf16", (), "bfloat16"),  # Zen 4: AVX512-BF16 without AMX
        (ZEN3, ("avx512_bf16",), "bfloat16"),  # torch sees what cpuinfo (e.g. a VM) hides
        ("", (), "float32"),  # no cpuinfo (macOS, Windows) and no probe: float32
    ],
    ids=["amx", "avx512-without-bf16", "avx2", "avx512-bf16", "torch-probe", "unknown"],
)
def test_auto_on_a_cpu_follows_its_bf16_instructions(cpu, flags, probes, expected):
    cpu(flags, probes)
    name, why = dtype_choice("auto", "cpu")
    assert name == expected
    assert resolve_dtype("auto", torch.device("cpu")) == getattr(torch, expected)
    assert ("the CPU has native bf16" in why) == (expected == "bfloat16")


def test_the_cpuinfo_flags_are_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {SAPPHIRE_RAPIDS}\n\nprocessor\t: 1\n")
    assert {"amx_bf16", "avx512_bf16"} <= dtypes._cpuinfo_flags(info)
    assert dtypes._cpuinfo_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize(("capability", "expected"), [((9, 0), "bfloat16"), ((7, 0), "float32")])
def test_auto_on_cuda_follows_the_compute_capability(cpu, monkeypatch, capability, expected):
    cpu(ZEN3)  # the host CPU does not matter for a CUDA device
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert dtype_choice("auto", "cuda:0")[0] == expected
    assert dtype_choice("auto", "mps")[0] == "float32"


@pytest.mark.parametrize("name", ["float32", "bfloat16", "float16"])
def test_a_named_dtype_is_taken_as_it_is(cpu, name):
    cpu(ZEN3)
    assert dtype_choice(name, "cpu") == (name, "set in the config")
    with pytest.raises(ValueError, match="'bf16' is not one of auto, float32"):
        dtype_choice("bf16", "cpu")


def test_the_device_of_a_placement(monkeypatch):
    assert placement_device("cpu") == torch.device("cpu")
    assert placement_device(device_map={"model": "cpu", "lm_head": "disk"}) == torch.device("cpu")
    assert placement_device(device_map={"model": 1, "lm_head": "cpu"}) == torch.device("cuda", 1)
    assert placement_device(device_map={"model": "cuda:2"}) == torch.device("cuda", 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert placement_device(device_map="auto") == torch.device("cpu")


@pytest.fixture
def prepared(tmp_path, tiny_llama_dir):
    out = tmp_path / "tiny"
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, out)
    return out


def test_float32_loads_the_float32_model_as_before(cpu, prepared, tiny_llama_dir):
    """``float32`` (the setting of every result before ``auto``) loads the saved float32
    weights unchanged, on a CPU with bf16 too."""
    import transformers

    cpu(SAPPHIRE_RAPIDS)
    loaded = load_model(prepared, dtype="float32", device="cpu")
    assert loaded.dtype == "float32"
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    reference = transformers.AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    for (name, ours), (_, theirs) in zip(
        loaded.model.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(ours, theirs), name
    ids = torch.tensor([[1, 5, 9, 13]])
    assert torch.equal(loaded.model(ids).logits, reference.eval()(ids).logits)


@pytest.mark.parametrize(("flags", "expected"), [(SAPPHIRE_RAPIDS, "bfloat16"), (ZEN3, "float32")])
def test_auto_loads_the_resolved_dtype_and_logs_it(cpu, prepared, caplog, flags, expected):
    cpu(flags)
    with caplog.at_level(logging.INFO, logger="langarith"):
        loaded = load_model(prepared, dtype="auto", device="cpu")
    assert loaded.dtype == expected
    assert {p.dtype for p in loaded.model.parameters()} == {getattr(torch, expected)}
    assert f"model tiny: dtype {expected} (auto: the CPU has" in caplog.text
