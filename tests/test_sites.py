"""Every registered family: the site is act(first MLP projection), recorded without the LM head.

Each family is a tiny random model built from its transformers config (hidden 32, 2 layers, no
download). The expected statistics are computed independently of the registry: the MLP input is
captured with a forward pre-hook and the first projection and the activation are applied by hand
in float64, from module paths written out here for each family.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import transformers
from torch import nn

from langarith.model.recording import chunk_batches, record_token_stream
from langarith.model.sites import (
    NeuronSites,
    UnsupportedModelError,
    check_site_widths,
    decoder_layers,
    find_sites,
)

VOCAB = 96


def silu(x: torch.Tensor) -> torch.Tensor:
    return x / (1.0 + torch.exp(-x))


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


@dataclass(frozen=True)
class Family:
    """A tiny model of one family and, independently of langarith.model.sites, where its parts
    are."""

    name: str
    config: Callable[[], transformers.PretrainedConfig]
    layers: Callable[[nn.Module], nn.ModuleList]
    site: Callable[[nn.Module], nn.Module]  # the activation module of one layer
    mlp: Callable[[nn.Module], nn.Module]
    projection: Callable[[nn.Module], nn.Module]  # the first projection of one layer's MLP
    act: Callable[[torch.Tensor], torch.Tensor]
    width: int
    conv1d: bool = False  # GPT-2's Conv1D stores the weight as [in, out]
    gate_half: bool = False  # Phi-3: the gate is the first half of the fused projection


COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)


def gated(name: str, config: Callable[[], transformers.PretrainedConfig], act) -> Family:
    return Family(
        name=name,
        config=config,
        layers=lambda m: m.model.layers,
        site=lambda layer: layer.mlp.act_fn,
        mlp=lambda layer: layer.mlp,
        projection=lambda layer: layer.mlp.gate_proj,
        act=act,
        width=48,
    )


FAMILIES = [
    gated("llama", lambda: transformers.LlamaConfig(**COMMON), silu),
    gated("mistral", lambda: transformers.MistralConfig(**COMMON, sliding_window=None), silu),
    gated("cohere", lambda: transformers.CohereConfig(**COMMON), silu),
    gated("cohere2", lambda: transformers.Cohere2Config(**COMMON, sliding_window=16), silu),
    gated("gemma", lambda: transformers.GemmaConfig(**COMMON, head_dim=8), gelu_tanh),
    gated(
        "gemma2",
        lambda: transformers.Gemma2Config(**COMMON, head_dim=8, sliding_window=16),
        gelu_tanh,
    ),
    gated(
        "gemma3_text",
        lambda: transformers.Gemma3TextConfig(**COMMON, head_dim=8, sliding_window=16),
        gelu_tanh,
    ),
    gated("qwen2", lambda: transformers.Qwen2Config(**COMMON), silu),
    gated("qwen3", lambda: transformers.Qwen3Config(**COMMON, head_dim=8), silu),
    Family(
        name="phi3",
        config=lambda: transformers.Phi3Config(**COMMON),
        layers=lambda m: m.model.layers,
        site=lambda layer: layer.mlp.activation_fn,
        mlp=lambda layer: layer.mlp,
        projection=lambda layer: layer.mlp.gate_up_proj,
        act=silu,
        width=48,
        gate_half=True,
    ),
    Family(
        name="gpt2",
        config=lambda: transformers.GPT2Config(
            vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=128
        ),
        layers=lambda m: m.transformer.h,
        site=lambda layer: layer.mlp.act,
        mlp=lambda layer: layer.mlp,
        projection=lambda layer: layer.mlp.c_fc,
        act=gelu_tanh,  # gelu_new
        width=4 * 32,
        conv1d=True,
    ),
    Family(
        name="gpt2_n_inner",
        config=lambda: transformers.GPT2Config(
            vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=128, n_inner=40
        ),
        layers=lambda m: m.transformer.h,
        site=lambda layer: layer.mlp.act,
        mlp=lambda layer: layer.mlp,
        projection=lambda layer: layer.mlp.c_fc,
        act=gelu_tanh,
        width=40,
        conv1d=True,
    ),
    Family(
        name="gpt_neox",
        config=lambda: transformers.GPTNeoXConfig(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=128,
        ),
        layers=lambda m: m.gpt_neox.layers,
        site=lambda layer: layer.mlp.act,
        mlp=lambda layer: layer.mlp,
        projection=lambda layer: layer.mlp.dense_h_to_4h,
        act=gelu_erf,
        width=48,
    ),
    Family(
        name="bloom",
        config=lambda: transformers.BloomConfig(
            vocab_size=VOCAB, hidden_size=32, n_layer=2, n_head=4
        ),
        layers=lambda m: m.transformer.h,
        site=lambda layer: layer.mlp.gelu_impl,
        mlp=lambda layer: layer.mlp,
        projection=lambda layer: layer.mlp.dense_h_to_4h,
        act=gelu_tanh,
        width=4 * 32,
    ),
]


def build(family: Family) -> nn.Module:
    """A tiny random model; first-projection weights widened so activations take both signs."""
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(family.config()).eval()
    with torch.no_grad():
        for layer in family.layers(model):
            family.projection(layer).weight.normal_(0.0, 0.5)
    return model


def direct_statistics(model: nn.Module, family: Family, batches, bos: int | None):
    """Counts and sums of act(first projection(mlp input)), by hand, in float64."""
    layers = family.layers(model)
    inputs: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}

    def capture(i: int):
        def pre_hook(_module, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            inputs[i].append(x.detach().clone())

        return pre_hook

    handles = [
        family.mlp(layer).register_forward_pre_hook(capture(i), with_kwargs=True)
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
        for handle in handles:
            handle.remove()
    skip = 1 if bos is not None else 0
    width = family.width
    shape = (len(layers), width)
    n_active = np.zeros(shape, dtype=np.int64)
    near_zero = np.zeros(shape, dtype=np.int64)  # |a| this small may round to either sign
    act_sum, act_sq = np.zeros(shape), np.zeros(shape)
    n_tokens = 0
    for i, layer in enumerate(layers):
        projection = family.projection(layer)
        weight = projection.weight.detach().double()
        weight = weight if family.conv1d else weight.T  # -> [in, out]
        bias = projection.bias.detach().double() if projection.bias is not None else 0.0
        for x in inputs[i]:
            pre = x[:, skip:, :].double() @ weight + bias
            if family.gate_half:
                pre = pre[..., :width]
            a = family.act(pre).reshape(-1, width).numpy()
            assert a.shape[1] == width
            n_active[i] += (a > 0).sum(axis=0)
            near_zero[i] += (np.abs(a) < 1e-6).sum(axis=0)
            act_sum[i] += a.sum(axis=0)
            act_sq[i] += (a**2).sum(axis=0)
            if i == 0:
                n_tokens += a.shape[0]
    return n_tokens, n_active, near_zero, act_sum, act_sq


@pytest.fixture(scope="module", params=FAMILIES, ids=lambda f: f.name)
def family_model(request) -> tuple[Family, nn.Module]:
    return request.param, build(request.param)


def test_sites_are_the_families_activation_modules(family_model):
    family, model = family_model
    sites = find_sites(model)
    layers = family.layers(model)
    assert decoder_layers(model) is layers
    assert sites.n_layers == 2 and sites.width == family.width
    assert all(site is family.site(layer) for site, layer in zip(sites.modules, layers))
    check_site_widths(model, sites)  # fires once per layer with the config's width


@pytest.mark.parametrize("bos", [None, 1])
def test_recorded_statistics_equal_direct_computation(family_model, bos):
    family, model = family_model
    calls: list[int] = []
    handle = model.get_output_embeddings().register_forward_hook(lambda *_: calls.append(1))
    rng = np.random.default_rng(0)
    stream = rng.integers(3, VOCAB, size=75)  # 2 full chunks of 32 + a row of 11
    try:
        stats = record_token_stream(
            model, stream, chunk_tokens=32, batch_size=2, bos_token_id=bos, progress=False
        )
    finally:
        handle.remove()
    assert calls == [], "the LM head ran during recording"
    n_tokens, n_active, near_zero, act_sum, act_sq = direct_statistics(
        model, family, chunk_batches(stream, 32, 2), bos
    )
    assert stats.n_tokens == n_tokens == 75
    assert stats.shape == (2, family.width)
    # counts are exact except where float32 and float64 may disagree on the sign of ~0
    assert (np.abs(stats.n_active - n_active) <= near_zero).all()
    np.testing.assert_allclose(stats.act_sum, act_sum, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stats.act_sq_sum, act_sq, rtol=1e-4, atol=1e-4)
    assert 0.1 < stats.p_active.mean() < 0.9  # both signs occur: the comparison is not vacuous


def test_a_site_of_the_wrong_width_is_caught():
    model = build(FAMILIES[0])
    sites = find_sites(model)
    wrong = NeuronSites(sites.model_type, sites.modules, sites.width + 1)
    with pytest.raises(UnsupportedModelError, match="width 49"):
        check_site_widths(model, wrong)


def test_a_site_firing_twice_is_caught():
    model = build(FAMILIES[0])
    mlp = model.model.layers[0].mlp
    original = mlp.forward

    def forward_calling_act_twice(x: torch.Tensor) -> torch.Tensor:
        mlp.act_fn(mlp.gate_proj(x))
        return original(x)

    mlp.forward = forward_calling_act_twice
    with pytest.raises(UnsupportedModelError, match=r"fire once.*\(0, 48\), \(0, 48\)"):
        check_site_widths(model, find_sites(model))


def test_a_projection_of_the_wrong_width_is_caught():
    model = build(FAMILIES[0])
    model.model.layers[1].mlp.gate_proj = nn.Linear(32, 50, bias=False)
    with pytest.raises(UnsupportedModelError, match="layer 1 of 'llama'.*48"):
        find_sites(model)


def test_shared_activation_modules_are_rejected():
    model = build(FAMILIES[0])
    model.model.layers[1].mlp.act_fn = model.model.layers[0].mlp.act_fn
    with pytest.raises(UnsupportedModelError, match="shared between layers"):
        find_sites(model)


def test_multimodal_wrapper_finds_the_language_model_layers():
    config = transformers.Gemma3Config(
        text_config=dict(COMMON, head_dim=8, sliding_window=16),
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ),
        mm_tokens_per_image=4,
    )
    torch.manual_seed(0)
    model = transformers.Gemma3ForConditionalGeneration(config).eval()
    sites = find_sites(model)
    layers = model.model.language_model.layers
    assert sites.model_type == "gemma3_text" and sites.n_layers == 2 and sites.width == 48
    assert all(site is layer.mlp.act_fn for site, layer in zip(sites.modules, layers))
    calls: list[int] = []
    model.get_output_embeddings().register_forward_hook(lambda *_: calls.append(1))
    stats = record_token_stream(model, np.arange(3, 40), 16, 2, progress=False)
    assert stats.n_tokens == 37 and calls == []


def test_unsupported_family_names_its_type_and_how_to_add_it():
    config = transformers.OPTConfig(
        num_hidden_layers=1,
        hidden_size=16,
        ffn_dim=32,
        num_attention_heads=2,
        vocab_size=50,
        word_embed_proj_dim=16,
    )
    with pytest.raises(UnsupportedModelError, match=r"'opt'.*SiteSpec.*tests/test_sites.py"):
        find_sites(transformers.OPTForCausalLM(config))
