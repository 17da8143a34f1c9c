"""Recorded statistics equal a direct computation of act(gate_proj(x)) on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import load_tiny

from langarith.io.activations import ActivationStats, read_sites, write_sites
from langarith.model.recording import (
    ActivationRecorder,
    chunk_batches,
    pack,
    record_sites,
    record_token_stream,
    reduce_activations,
)
from langarith.model.sites import UnsupportedModelError, find_sites

ACT = {"llama": F.silu, "gemma3": lambda x: F.gelu(x, approximate="tanh")}


def direct_statistics(model, arch: str, batches, bos: int | None):
    """Capture each MLP's input and compute the gate activation by hand, in float64."""
    layers = model.model.layers
    inputs: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}
    handles = [
        layer.mlp.register_forward_pre_hook(lambda _m, args, i=i: inputs[i].append(args[0]))
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            for batch in batches:
                ids = torch.from_numpy(batch)
                if bos is not None:
                    ids = torch.cat([torch.full((ids.shape[0], 1), bos), ids], dim=1)
                model(input_ids=ids)
    finally:
        for h in handles:
            h.remove()
    skip = 1 if bos is not None else 0
    n_layers, width = len(layers), model.config.intermediate_size
    n_active = np.zeros((n_layers, width), dtype=np.int64)
    act_sum = np.zeros((n_layers, width))
    act_sq = np.zeros((n_layers, width))
    n_tokens = 0
    for i, layer in enumerate(layers):
        weight = layer.mlp.gate_proj.weight.detach().double()
        for x in inputs[i]:
            a = ACT[arch](x[:, skip:, :].double() @ weight.T).reshape(-1, width).numpy()
            n_active[i] += (a > 0).sum(axis=0)
            act_sum[i] += a.sum(axis=0)
            act_sq[i] += (a**2).sum(axis=0)
            if i == 0:
                n_tokens += a.shape[0]
    return n_tokens, n_active, act_sum, act_sq


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
@pytest.mark.parametrize("bos", [None, 1])
def test_statistics_equal_direct_computation(arch, bos, request):
    model_dir = request.getfixturevalue(f"tiny_{arch}_dir")
    model, _ = load_tiny(model_dir)
    rng = np.random.default_rng(0)
    stream = rng.integers(4, model.config.vocab_size, size=203)  # 3 full chunks of 64 + 11
    stats = record_token_stream(
        model, stream, chunk_tokens=64, batch_size=2, bos_token_id=bos, progress=False
    )
    n_tokens, n_active, act_sum, act_sq = direct_statistics(
        model, arch, chunk_batches(stream, 64, 2), bos
    )
    assert stats.n_tokens == n_tokens == 203
    # a handful of activations within float32 rounding of 0 may flip sign between the paths
    assert np.abs(stats.n_active - n_active).max() <= 1
    assert (stats.n_active != n_active).mean() < 0.01
    np.testing.assert_allclose(stats.act_sum, act_sum, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(stats.act_sq_sum, act_sq, rtol=1e-4, atol=1e-3)
    assert 0.2 < stats.p_active.mean() < 0.8  # both signs occur: the comparison is not vacuous


def test_files_without_a_site_column_hold_the_neurons_only(tmp_path):
    """Statistics files written before the residual stream was recorded: read as ``mlp``."""
    import pyarrow.parquet as pq

    stats = ActivationStats.zeros(2, 3)
    stats.n_tokens, stats.n_active[:] = 10, 4
    path = tmp_path / "old.parquet"
    pq.write_table(stats.to_table().drop_columns(["site"]), path)
    assert list(read_sites(path)) == ["mlp"]
    np.testing.assert_array_equal(ActivationStats.read(path).n_active, stats.n_active)
    with pytest.raises(ValueError, match=r"old\.parquet: no 'residual' statistics .*record"):
        ActivationStats.read(path, site="residual")


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_residual_statistics_equal_the_hidden_states(arch, request):
    """The residual site's sums are the float64 sums of each decoder layer's output: the
    model's own ``hidden_states[layer + 1]`` and, for the last layer (whose
    ``hidden_states`` entry is after the final norm), the final norm's input; recorded in the
    same passes as the neurons, whose statistics stay what a neurons-only pass gives."""
    import transformers

    path = request.getfixturevalue(f"tiny_{arch}_dir")
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64).eval()
    stream = np.random.default_rng(3).integers(4, 500, size=150)
    sites = record_sites(model, stream, 24, 3, bos_token_id=1, progress=False)
    residual = sites["residual"]
    n_layers = model.config.num_hidden_layers
    sums = np.zeros((n_layers, model.config.hidden_size))
    squares = np.zeros_like(sums)
    final_norm_input: list[torch.Tensor] = []
    handle = model.model.norm.register_forward_pre_hook(
        lambda _m, args: final_norm_input.append(args[0])
    )
    try:
        for batch in chunk_batches(stream, 24, 3):
            ids = torch.from_numpy(batch)
            with torch.no_grad():
                out = model.model(
                    input_ids=torch.cat([torch.ones_like(ids[:, :1]), ids], 1),
                    output_hidden_states=True,
                )
            states = [*out.hidden_states[1:n_layers], final_norm_input.pop()]
            for layer, h in enumerate(states):
                h = h[:, 1:].reshape(-1, h.shape[-1]).numpy()  # the BOS position is not counted
                sums[layer] += h.sum(0)
                squares[layer] += (h**2).sum(0)
    finally:
        handle.remove()
    assert residual.n_tokens == len(stream) == sites["mlp"].n_tokens
    np.testing.assert_allclose(residual.act_sum, sums, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(residual.act_sq_sum, squares, rtol=1e-10, atol=1e-10)
    assert np.abs(residual.act_sum).min() > 0  # every dimension carries signal
    alone = record_token_stream(model, stream, 24, 3, bos_token_id=1, progress=False)
    np.testing.assert_array_equal(sites["mlp"].act_sum, alone.act_sum)
    np.testing.assert_array_equal(sites["mlp"].n_active, alone.n_active)


def test_lm_head_is_never_computed(tiny_llama_dir):
    model, _ = load_tiny(tiny_llama_dir)
    calls = []
    model.lm_head.register_forward_hook(lambda *_: calls.append(1))
    record_token_stream(model, np.arange(4, 100), 32, 2, progress=False)
    assert calls == []


def test_sharded_statistics_merge_to_a_single_pass(tiny_llama_dir):
    model, _ = load_tiny(tiny_llama_dir)
    stream = np.random.default_rng(1).integers(4, 500, size=256)
    whole = record_token_stream(model, stream, 64, 4, progress=False)
    first = record_token_stream(model, stream[:128], 64, 4, progress=False)
    second = record_token_stream(model, stream[128:], 64, 4, progress=False)
    merged = first.merge(second)
    assert merged.n_tokens == whole.n_tokens
    np.testing.assert_array_equal(merged.n_active, whole.n_active)
    np.testing.assert_allclose(merged.act_sum, whole.act_sum, rtol=1e-5, atol=1e-4)


def test_statistics_roundtrip_through_parquet(tmp_path, tiny_gemma3_dir):
    model, _ = load_tiny(tiny_gemma3_dir)
    sites = record_sites(
        model, np.arange(4, 80), 16, 2, bos_token_id=1, metadata={"lang": "xx"}, progress=False
    )
    write_sites(tmp_path / "s.parquet", sites)
    back_sites = read_sites(tmp_path / "s.parquet")
    assert list(back_sites) == ["mlp", "residual"]
    assert back_sites["residual"].shape == (3, 32) and back_sites["mlp"].shape == (3, 48)
    for site, stats in sites.items():
        back = back_sites[site]
        assert back.n_tokens == stats.n_tokens == 76
        np.testing.assert_array_equal(back.n_active, stats.n_active)
        np.testing.assert_array_equal(back.act_sum, stats.act_sum)
        np.testing.assert_array_equal(back.act_sq_sum, stats.act_sq_sum)
        assert back.metadata["lang"] == "xx" and back.metadata["bos"] is True
    mlp = ActivationStats.read(tmp_path / "s.parquet")  # the neurons, by default
    np.testing.assert_array_equal(mlp.act_sum, sites["mlp"].act_sum)
    import pyarrow.parquet as pq

    schema = pq.read_schema(tmp_path / "s.parquet")
    assert [f"{f.name}:{f.type}" for f in schema] == [
        "site:string",
        "layer:int16",
        "neuron:int32",
        "n_tokens:int64",
        "n_active:int64",
        "act_sum:double",
        "act_sq_sum:double",
    ]


def test_pack_concatenates_and_truncates_to_budget():
    stream = pack([[1, 2, 3], [4, 5], [6, 7, 8, 9]], chunk_tokens=4, max_tokens=7)
    assert stream.tolist() == [1, 2, 3, 4, 5, 6, 7] and stream.dtype == np.int64
    assert pack([[1, 2], [3]], chunk_tokens=4).tolist() == [1, 2, 3]
    assert pack([], chunk_tokens=4).tolist() == []
    batches = list(chunk_batches(stream, 3, batch_size=8))
    assert [b.tolist() for b in batches] == [[[1, 2, 3], [4, 5, 6]], [[7]]]


def test_sites_are_the_activation_modules(tiny_llama_dir):
    model, _ = load_tiny(tiny_llama_dir)
    sites = find_sites(model)
    assert sites.n_layers == 3 and sites.width == 48
    assert all(site is layer.mlp.act_fn for site, layer in zip(sites.modules, model.model.layers))


def test_unsupported_architecture_is_named():
    import transformers

    config = transformers.OPTConfig(
        num_hidden_layers=1,
        hidden_size=16,
        ffn_dim=32,
        num_attention_heads=2,
        vocab_size=50,
        word_embed_proj_dim=16,
    )
    model = transformers.OPTForCausalLM(config)
    with pytest.raises(UnsupportedModelError, match=r"'opt' \(OPTForCausalLM\).*SiteSpec.*SITES"):
        find_sites(model)


@pytest.mark.parametrize("method", ["gemv", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reduction_equals_a_float64_reference(method, dtype):
    torch.manual_seed(0)
    full = torch.randn(3, 41, 24).to(dtype)
    full[:, 5:9, :] = 0.0  # exact zeros: not active
    full[0, 10, 3] = -0.0
    acts = full[:, 1:, :]  # strided view, as when a BOS position is skipped
    n_active, act_sum, act_sq_sum = reduce_activations(acts, method)
    ref = acts.double().reshape(-1, 24).numpy()
    assert n_active.dtype == torch.int64 and act_sum.dtype == act_sq_sum.dtype == torch.float64
    np.testing.assert_array_equal(n_active.numpy(), (ref > 0).sum(axis=0))
    np.testing.assert_allclose(act_sum.numpy(), ref.sum(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(act_sq_sum.numpy(), (ref**2).sum(axis=0), rtol=1e-5)


@pytest.mark.parametrize("method", ["gemv", "fused"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_reduction_leaves_the_activations_as_they_were(method, dtype):
    """The activations a hook reduces are the model's own: reducing them changes nothing."""
    torch.manual_seed(0)
    acts = torch.randn(2, 9, 8).to(dtype)
    before = acts.clone()
    reduce_activations(acts[:, 1:, :], method)
    assert torch.equal(acts, before)


def test_reduction_rejects_unknown_methods_and_shapes():
    with pytest.raises(ValueError, match="method"):
        reduce_activations(torch.zeros(1, 2, 3), "fast")
    with pytest.raises(ValueError, match="rows, positions, neurons"):
        reduce_activations(torch.zeros(2, 3))


def test_both_reductions_record_the_same_model_statistics(tiny_llama_dir):
    model, _ = load_tiny(tiny_llama_dir)
    ids = torch.from_numpy(np.random.default_rng(2).integers(4, 500, size=(2, 40)))
    results = {}
    for method in ("gemv", "fused"):
        with (
            torch.no_grad(),
            ActivationRecorder(find_sites(model), skip_positions=1, reduction=method) as recorder,
        ):
            model.model(input_ids=ids)
            model.model(input_ids=ids[:1, :17])
        results[method] = recorder.stats()
    gemv, fused = results["gemv"], results["fused"]
    assert gemv.n_tokens == fused.n_tokens == 2 * 39 + 16
    np.testing.assert_array_equal(gemv.n_active, fused.n_active)
    np.testing.assert_allclose(gemv.act_sum, fused.act_sum, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gemv.act_sq_sum, fused.act_sq_sum, rtol=1e-5, atol=1e-5)


def test_recorder_without_forward_passes_gives_zeros(tiny_llama_dir):
    model, _ = load_tiny(tiny_llama_dir)
    with ActivationRecorder(find_sites(model)) as recorder:
        pass
    stats = recorder.stats({"lang": "xx"})
    assert stats.n_tokens == 0 and stats.shape == (3, 48) and stats.metadata == {"lang": "xx"}
    assert not stats.n_active.any()


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_bf16_statistics_are_float64_sums_of_the_bf16_activations(arch, request):
    """A model loaded in bfloat16: the recorded counts equal, and the sums equal to float64
    rounding, a float64 computation on the same bf16 activations (captured by a hook of our
    own on the neuron sites, upcast to float64, summed), through both reductions."""
    import transformers

    path = request.getfixturevalue(f"tiny_{arch}_dir")
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
    sites = find_sites(model)
    stream = np.random.default_rng(5).integers(4, 500, size=300)
    batches = list(chunk_batches(stream, 24, 3))
    for method in ("gemv", "fused"):
        captured: list[list[torch.Tensor]] = [[] for _ in range(sites.n_layers)]
        handles = [
            module.register_forward_hook(
                lambda _m, _i, out, into=captured[layer]: into.append(out[:, 1:].detach().clone())
            )
            for layer, module in enumerate(sites.modules)
        ]
        try:
            with (
                torch.no_grad(),
                ActivationRecorder(sites, skip_positions=1, reduction=method) as recorder,
            ):
                for batch in batches:
                    ids = torch.from_numpy(batch)
                    model.model(input_ids=torch.cat([torch.ones_like(ids[:, :1]), ids], 1))
        finally:
            for handle in handles:
                handle.remove()
        stats = recorder.stats()
        assert captured[0][0].dtype == torch.bfloat16
        assert stats.n_tokens == len(stream)
        for layer, outputs in enumerate(captured):
            acts = torch.cat([o.reshape(-1, sites.width) for o in outputs]).double()
            assert acts.shape[0] == len(stream)
            np.testing.assert_array_equal(stats.n_active[layer], (acts > 0).sum(0).numpy())
            np.testing.assert_allclose(
                stats.act_sum[layer], acts.sum(0).numpy(), rtol=1e-12, atol=1e-12
            )
            np.testing.assert_allclose(
                stats.act_sq_sum[layer], acts.square().sum(0).numpy(), rtol=1e-12, atol=1e-12
            )


def test_bf16_reduction_is_exact_where_float32_accumulation_is_not():
    """Σa of bf16 values of very different sizes: float64 keeps every one, float32 drops the small
    ones (the float32 path is kept for float32 activations only, for byte-identical results)."""
    acts = torch.tensor([2.0**24] + [1.0] * 15, dtype=torch.bfloat16).reshape(1, 16, 1)
    for method in ("gemv", "fused"):
        _n, act_sum, _sq = reduce_activations(acts, method)
        assert act_sum.item() == 2.0**24 + 15
