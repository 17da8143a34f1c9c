"""Recording through accelerate's offloading wrappers gives the statistics of the unsplit model.

Layers offloaded to disk or CPU RAM keep their weights on the ``meta`` device and are run by
accelerate hooks that load the weights just in time; the neuron-site hooks must still fire once
per layer, on the right activations, and the LM head must still never run.
"""

from __future__ import annotations

import accelerate
import numpy as np
import pytest
import torch
from accelerate.utils.offload import OffloadedWeightsLoader
from conftest import load_tiny

from langarith.activations import ActivationStats
from langarith.models import prepare_model
from langarith.offload import input_device, load_with_device_map
from langarith.record import record_token_stream

DEVICE_MAP = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.layers.2": "disk",
    "model.norm": "cpu",
    "lm_head": "cpu",
}


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return np.random.default_rng(3).integers(4, 500, size=301)


def record(model, stream: np.ndarray) -> ActivationStats:
    return record_token_stream(model, stream, 64, 2, bos_token_id=1, progress=False)


def assert_same_statistics(split: ActivationStats, whole: ActivationStats) -> None:
    assert split.n_tokens == whole.n_tokens == 301
    np.testing.assert_array_equal(split.n_active, whole.n_active)
    np.testing.assert_allclose(split.act_sum, whole.act_sum, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(split.act_sq_sum, whole.act_sq_sum, rtol=1e-6, atol=1e-6)
    assert 0.2 < whole.p_active.mean() < 0.8


def test_device_map_with_disk_offload_records_the_unsplit_statistics(
    tiny_llama_dir, tmp_path, stream
):
    whole = record(load_tiny(tiny_llama_dir)[0], stream)
    model_dir = tmp_path / "prepared"
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, model_dir)
    loaded = load_with_device_map(model_dir, DEVICE_MAP, offload_folder=tmp_path / "offload")
    model = loaded.model
    assert model.hf_device_map == DEVICE_MAP
    for index in (1, 2):  # really offloaded: accelerate loads the weights only while it runs
        gate_proj = model.model.layers[index].mlp.gate_proj
        assert gate_proj.weight.device.type == "meta"
        assert gate_proj._hf_hook.offload is True
        assert isinstance(gate_proj._hf_hook.weights_map.dataset, OffloadedWeightsLoader)
    assert model.model.layers[0].mlp.gate_proj.weight.device.type == "cpu"
    assert input_device(model) == torch.device("cpu")
    calls: list[int] = []
    model.lm_head.register_forward_hook(lambda *_: calls.append(1))
    assert_same_statistics(record(model, stream), whole)
    assert calls == []


@pytest.mark.parametrize("wrapper", ["cpu_offload", "disk_offload"])
def test_accelerate_offload_wrappers_record_the_unsplit_statistics(
    wrapper, tiny_llama_dir, tmp_path, stream
):
    whole = record(load_tiny(tiny_llama_dir)[0], stream)
    model, _ = load_tiny(tiny_llama_dir)
    if wrapper == "cpu_offload":
        accelerate.cpu_offload(model, execution_device=torch.device("cpu"))
    else:
        accelerate.disk_offload(model, tmp_path / "offload", execution_device=torch.device("cpu"))
    assert model.model.layers[0].mlp.gate_proj.weight.device.type == "meta"
    assert_same_statistics(record(model, stream), whole)


def test_disk_offload_without_a_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="offload_folder"):
        load_with_device_map(tmp_path, DEVICE_MAP)
