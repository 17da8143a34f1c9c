"""Recording through accelerate's offloading wrappers gives the statistics of the unsplit model.

Layers offloaded to disk or CPU RAM keep their weights on the ``meta`` device and are run by
accelerate hooks that load the weights just in time; the neuron-site hooks must still fire once
per layer, on the right activations, and the LM head must still never run. The model config's
``device_map`` / ``max_memory`` / ``offload_folder`` reach the model through ``load_model``, the
loader of every job.
"""

from __future__ import annotations

import accelerate
import numpy as np
import pytest
import torch
from accelerate.utils.offload import OffloadedWeightsLoader
from conftest import load_tiny, repo_lines

from langarith.core.plans import NeuronOp
from langarith.io.activations import ActivationStats
from langarith.io.corpora import Document, write_corpus
from langarith.model.generation import generate
from langarith.model.loading import load_configured_model, load_model, prepare_model
from langarith.model.placement import input_device
from langarith.model.recording import record_corpus, record_token_stream

DEVICE_MAP = {
    "model.embed_tokens": "cpu",
    "model.rotary_emb": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.layers.2": "disk",
    "model.norm": "cpu",
    "lm_head": "cpu",
}
# With 200 kB of CPU RAM, "auto" keeps the embedding and layer 0 in RAM and puts the rest on disk
AUTO_SPLIT = {
    "model.embed_tokens": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.layers.2": "disk",
    "model.norm": "disk",
    "model.rotary_emb": "disk",
    "lm_head": "disk",
}


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return np.random.default_rng(3).integers(4, 500, size=301)


@pytest.fixture(scope="module")
def model_dir(tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "tiny"
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, out)
    return out


def record(model, stream: np.ndarray) -> ActivationStats:
    return record_token_stream(model, stream, 64, 2, bos_token_id=1, progress=False)


def assert_same_statistics(split: ActivationStats, whole: ActivationStats, n: int = 301) -> None:
    assert split.n_tokens == whole.n_tokens == n
    np.testing.assert_array_equal(split.n_active, whole.n_active)
    np.testing.assert_allclose(split.act_sum, whole.act_sum, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(split.act_sq_sum, whole.act_sq_sum, rtol=1e-6, atol=1e-6)
    assert 0.2 < whole.p_active.mean() < 0.8


def assert_offloaded(model, layers) -> None:
    """accelerate really offloaded ``layers``: their weights are loaded only while they run."""
    for index in layers:
        gate_proj = model.model.layers[index].mlp.gate_proj
        assert gate_proj.weight.device.type == "meta"
        assert gate_proj._hf_hook.offload is True
        assert isinstance(gate_proj._hf_hook.weights_map.dataset, OffloadedWeightsLoader)
    assert model.model.layers[0].mlp.gate_proj.weight.device.type == "cpu"


def test_config_device_map_with_disk_offload_records_the_unsplit_statistics(
    tiny_llama_dir, model_dir, tmp_path, stream
):
    whole = record(load_tiny(tiny_llama_dir)[0], stream)
    options = {"dtype": "float32", "device_map": DEVICE_MAP, "offload_folder": str(tmp_path)}
    model = load_configured_model(model_dir, options).model
    assert model.hf_device_map == DEVICE_MAP
    assert_offloaded(model, (1, 2))
    assert input_device(model) == torch.device("cpu")
    # each loading process works in its own subfolder of offload_folder
    assert [p.name.split(".")[0] for p in tmp_path.iterdir()] == ["tiny"]
    calls: list[int] = []
    model.lm_head.register_forward_hook(lambda *_: calls.append(1))
    assert_same_statistics(record(model, stream), whole)
    assert calls == []


def test_recording_job_honours_the_model_config_device_map(model_dir, tmp_path):
    """``record_corpus`` (the recording job) with ``device_map: auto`` bounded by ``max_memory``
    and with an explicit map: the statistics of the job without placement options."""
    lines = repo_lines("en", 80)
    corpus = tmp_path / "en.parquet"
    write_corpus([Document(str(i), t) for i, t in enumerate(lines)], corpus, source="en")
    recording = {"chunk_tokens": 64, "batch_size": 4, "max_tokens": 1000, "prepend_bos": True}
    whole = record_corpus(str(model_dir), str(corpus), {"dtype": "float32"}, recording)
    placements = {
        "auto": {"device_map": "auto", "max_memory": {"cpu": "200KB"}},
        "explicit": {"device_map": DEVICE_MAP},
    }
    for name, placement in placements.items():
        options = {"dtype": "float32", **placement, "offload_folder": str(tmp_path / name)}
        model = load_configured_model(model_dir, options).model
        assert model.hf_device_map == (AUTO_SPLIT if name == "auto" else DEVICE_MAP)
        assert_offloaded(model, (1, 2))
        split = record_corpus(str(model_dir), str(corpus), options, recording)
        assert set(split) == set(whole) == {"mlp", "residual"}
        for site in whole:  # the residual stream of an offloaded layer is recorded too
            assert_same_statistics(split[site], whole[site], n=1000)


def test_steered_generation_on_an_offloaded_model_equals_the_unsplit_model(model_dir, tmp_path):
    whole = load_model(model_dir)
    split = load_model(model_dir, device_map=DEVICE_MAP, offload_folder=tmp_path)
    plan = [NeuronOp("set", layer, np.arange(48), np.full(48, 2.0)) for layer in range(3)]
    prompts = ["Q: How are you today? \nA:", "Hello"]
    outputs = [
        generate(loaded.model, loaded.tokenizer, prompts, [[], plan], max_new_tokens=6,
                 progress=False)
        for loaded in (whole, split)
    ]  # fmt: skip
    assert outputs[0] == outputs[1]
    assert outputs[0] != generate(
        whole.model, whole.tokenizer, prompts, max_new_tokens=6, progress=False
    )  # the plan changes the second row: steering ran


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


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"device_map": DEVICE_MAP}, "offload_folder: a device_map that offloads modules to"),
        ({"device_map": "balanced"}, "device_map: 'balanced' is not one of auto"),
        ({"device_map": {"": "gpu0"}}, "device_map: 'gpu0' (for '') is not a device"),
        ({"device_map": {**DEVICE_MAP, "lm_head": "cpu", "model.layers.1": "cpu",
                         "model.layers.2": "cpu", "model.mlp": "cpu"}},
         "device_map: 'model.mlp' is not a module of LlamaForCausalLM"),
        ({"device_map": {k: "cpu" for k in DEVICE_MAP if k != "lm_head"}},
         "device_map: no device for the parameter 'lm_head.weight'"),
        ({"device_map": {k: "cpu" for k in DEVICE_MAP if not k.startswith("model.layers")}},
         "device_map: no device for the parameter 'model.layers.0.self_attn.q_proj.weight' and "
         "26 more"),
        ({"max_memory": {"cpu": "1GiB"}}, "max_memory: only used with a device_map"),
        ({"offload_folder": "x"}, "offload_folder: only used with a device_map"),
        ({"device_map": "auto", "max_memory": {"ram": "1GiB"}}, "max_memory: 'ram' is not a"),
        ({"device_map": "auto", "max_memory": {0: "lots"}}, "max_memory.0: 'lots' is not a size"),
    ],
)  # fmt: skip
def test_bad_placement_is_one_line_naming_the_option(model_dir, options, message):
    with pytest.raises(ValueError) as info:
        load_configured_model(model_dir, options)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
