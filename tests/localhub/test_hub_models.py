"""Models from a hub (``source.kind: hub``), through the project's real loading code
(``prepare_model`` -> ``snapshot_download``) against the local hub: the paper's four
architectures with their real configuration quirks, the files downloaded, a pinned revision,
and a one-line error for each way the hub can refuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from localhub import repos
from localhub.server import OTHER_TOKEN

REPO_ROOT = repos.repo_text.REPO


def prepare(hub_id: str, out, revision: str | None = None) -> dict:
    from langarith.model.loading import prepare_model

    out.parent.mkdir(parents=True, exist_ok=True)
    source = {"kind": "hub", "id": hub_id, "revision": revision}
    return prepare_model(source, out)


def direct_statistics(model, stream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """act(gate_proj(x)) of every layer's MLP input x, by hand in float64: (n_active, act_sum)."""
    layers = model.model.layers
    inputs: dict[int, torch.Tensor] = {}
    handles = [
        layer.mlp.register_forward_pre_hook(lambda _m, args, i=i: inputs.__setitem__(i, args[0]))
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            model(input_ids=torch.from_numpy(stream)[None])
    finally:
        for handle in handles:
            handle.remove()
    n_active, act_sum = [], []
    for i, layer in enumerate(layers):
        weight = layer.mlp.gate_proj.weight.detach().double()
        a = layer.mlp.act_fn(inputs[i][0].double() @ weight.T)
        n_active.append((a > 0).sum(0).numpy())
        act_sum.append(a.sum(0).numpy())
    return np.stack(n_active), np.stack(act_sum)


@pytest.mark.parametrize("hub_id", repos.MODELS)
def test_each_architecture_is_prepared_loaded_and_recorded(hub, tmp_path, hub_id):
    from langarith.model.loading import load_model
    from langarith.model.recording import record_token_stream
    from langarith.model.sites import find_sites

    hub.login()
    manifest = prepare(hub_id, tmp_path / "models" / "m")
    repo = hub.hub.repos[("model", hub_id)]
    assert manifest["revision"] == repo.refs["main"]  # the commit, for provenance
    assert manifest["source"]["id"] == hub_id
    loaded = load_model(tmp_path / "models" / "m", dtype="float32", device="cpu")
    model, config = loaded.model, loaded.model.config
    assert type(model).__name__ == repos.CONFIGS[hub_id]["architectures"][0]
    if hub_id == repos.LLAMA:
        assert config.rope_parameters["rope_type"] == "llama3"
        assert config.num_attention_heads == 4 * config.num_key_value_heads
    if hub_id in (repos.MISTRAL, repos.GEMMA):
        assert config.head_dim == 16 != config.hidden_size // config.num_attention_heads
        assert model.model.layers[0].self_attn.q_proj.out_features == 4 * 16
    if hub_id == repos.AYA:
        assert config.logit_scale == 0.125
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    sites = find_sites(model)
    assert len(sites.modules) == config.num_hidden_layers and sites.width == 48
    assert loaded.tokenizer("Guten Tag")["input_ids"][0] == loaded.tokenizer.bos_token_id
    # recording equals the float64 computation by hand on this architecture
    stream = np.random.default_rng(0).integers(4, config.vocab_size, size=64)
    stats = record_token_stream(model, stream, chunk_tokens=64, batch_size=1, progress=False)
    n_active, act_sum = direct_statistics(model, stream)
    assert stats.n_tokens == 64
    assert np.abs(stats.n_active - n_active).max() <= 1
    np.testing.assert_allclose(stats.act_sum, act_sum, rtol=1e-4, atol=1e-3)
    # the 16-bit dtype of the paper's configs loads too
    half = load_model(tmp_path / "models" / "m", dtype="bfloat16", device="cpu").model
    assert next(half.parameters()).dtype == torch.bfloat16


def test_mistral_downloads_one_copy_of_the_weights(hub, tmp_path):
    """Mistral's repositories hold the weights twice (transformers shards and their own
    ``consolidated.safetensors``); only the shards transformers loads are fetched."""
    hub.login()
    manifest = prepare(repos.MISTRAL, tmp_path / "models" / "nemo")
    fetched = hub.hub.downloads(repos.MISTRAL)
    assert "consolidated.safetensors" not in fetched
    shards = {f for f in fetched if f.startswith("model-") and f.endswith(".safetensors")}
    assert len(shards) == 4 and "model.safetensors.index.json" in fetched
    assert not (tmp_path / "models" / "nemo" / "consolidated.safetensors").exists()
    assert not os.path.exists(os.path.join(manifest["path"], "consolidated.safetensors"))


def test_llama_skips_metas_original_checkpoint(hub, tmp_path):
    hub.login()
    prepare(repos.LLAMA, tmp_path / "models" / "llama")
    fetched = hub.hub.downloads(repos.LLAMA)
    assert not [f for f in fetched if f.startswith("original/")]
    assert {"config.json", "tokenizer.json", "model.safetensors.index.json"} <= fetched


def test_a_pinned_revision_is_what_is_loaded_and_recorded(hub, tmp_path):
    from langarith.model.loading import load_model

    hub.login()
    repo = hub.hub.repos[("model", repos.GEMMA)]
    assert repo.refs["v1"] != repo.refs["main"]
    pinned = prepare(repos.GEMMA, tmp_path / "models" / "v1", revision="v1")
    latest = prepare(repos.GEMMA, tmp_path / "models" / "main")
    assert pinned["revision"] == repo.refs["v1"] and latest["revision"] == repo.refs["main"]
    by_sha = prepare(repos.GEMMA, tmp_path / "models" / "sha", revision=repo.refs["v1"])
    assert by_sha["path"] == pinned["path"]
    w_v1 = load_model(tmp_path / "models" / "v1", device="cpu").model.model.embed_tokens.weight
    w_main = load_model(tmp_path / "models" / "main", device="cpu").model.model.embed_tokens.weight
    assert not torch.equal(w_v1, w_main)


def test_offline_with_the_model_cached_prepares_it_again(hub, tmp_path):
    hub.login()
    online = prepare(repos.AYA, tmp_path / "models" / "aya")
    hub.offline()
    hub.hub.requests.clear()
    offline = prepare(repos.AYA, tmp_path / "models" / "aya-again")
    assert offline["path"] == online["path"]
    assert hub.hub.requests == []  # nothing asked of the hub


def assert_one_line_and_nothing_left(err: pytest.ExceptionInfo, out) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == []  # no staging directory either
    return message


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, r"is gated: accept its terms at http://127\.0\.0\.1:\d+/meta-llama/Llama-3\.1-8B"),
        (OTHER_TOKEN, r"is gated and the token in use has no access to it: accept its terms"),
    ],
)
def test_a_gated_model_says_which_repository_accept_its_terms_and_log_in(
    hub, tmp_path, token, expected
):
    hub.login(token)
    out = tmp_path / "models" / "llama"
    with pytest.raises(ValueError, match=expected) as err:
        prepare(repos.LLAMA, out)
    message = assert_one_line_and_nothing_left(err, out)
    assert "'meta-llama/Llama-3.1-8B'" in message
    assert "hf auth login" in message and "HF_TOKEN" in message


def test_a_missing_model_is_named(hub, tmp_path):
    out = tmp_path / "models" / "x"
    with pytest.raises(ValueError, match=r"model 'nobody/no-such-model' .*is not on the hub") as e:
        prepare("nobody/no-such-model", out)
    assert "check the id" in assert_one_line_and_nothing_left(e, out)


def test_a_missing_revision_is_named(hub, tmp_path):
    out = tmp_path / "models" / "x"
    with pytest.raises(ValueError, match=r"model 'CohereLabs/aya-expanse-8b' .*no revision 'v9'"):
        prepare(repos.AYA, out, revision="v9")
    assert not out.exists()


def test_offline_with_nothing_cached_says_what_to_do(hub, tmp_path):
    hub.offline()
    out = tmp_path / "models" / "x"
    with pytest.raises(ValueError, match=r"not in the local Hugging Face cache") as err:
        prepare(repos.AYA, out)
    message = assert_one_line_and_nothing_left(err, out)
    assert "HF_HUB_OFFLINE" in message and "'CohereLabs/aya-expanse-8b'" in message
    assert hub.hub.requests == []


def test_a_job_process_finds_the_hub_through_the_environment_alone(hub, tmp_path):
    """A Snakemake job is a fresh process: HF_ENDPOINT / HF_HOME / HF_TOKEN are all it gets."""
    hub.login()
    code = (
        "import json, sys\n"
        "from langarith.model.loading import prepare_model, load_model\n"
        f"m = prepare_model({{'kind': 'hub', 'id': {repos.GEMMA!r}}}, sys.argv[1])\n"
        "model = load_model(sys.argv[1], dtype='bfloat16', device='cpu').model\n"
        "print(json.dumps({'revision': m['revision'], 'type': type(model).__name__}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "gemma")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    repo = hub.hub.repos[("model", repos.GEMMA)]
    assert out == {"revision": repo.refs["main"], "type": "Gemma3ForCausalLM"}
    assert (
        str(hub.home)
        in json.loads((tmp_path / "gemma" / "langarith_model.json").read_text())["path"]
    )
