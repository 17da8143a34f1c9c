"""``model.lm_head.project`` gives the logits the model's own forward gives, for every family with
something between the LM head and the logits: Cohere's ``logit_scale`` (Aya Expanse: 0.125 in
8B, 0.0625 in 32B), Gemma's final soft-capping, and none for Llama and Mistral. The logit lens
and the perplexity of the quality metrics read logits through it."""

from __future__ import annotations

import pytest
import torch
import transformers

from langarith.model.lm_head import project

TINY = dict(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=1,
    max_position_embeddings=64,
)
FAMILIES = {
    "llama": lambda: transformers.LlamaConfig(**TINY),
    "mistral": lambda: transformers.MistralConfig(**TINY, head_dim=16),
    "cohere-8b": lambda: transformers.CohereConfig(**TINY, logit_scale=0.125),
    "cohere-32b": lambda: transformers.CohereConfig(**TINY, logit_scale=0.0625),
    "cohere2": lambda: transformers.Cohere2Config(
        **TINY, logit_scale=0.25, layer_types=["sliding_attention", "full_attention"]
    ),
    "gemma3": lambda: transformers.Gemma3TextConfig(
        **TINY, head_dim=8, sliding_window=16, final_logit_softcapping=5.0
    ),
}


def tiny(family: str):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(FAMILIES[family]()).eval()
    with torch.no_grad():  # logits large enough for a scale or a cap to matter
        model.get_output_embeddings().weight.normal_(0.0, 2.0)
    return model


@pytest.mark.parametrize("family", list(FAMILIES))
def test_project_gives_the_models_own_logits(family):
    model = tiny(family)
    ids = torch.randint(3, 97, (2, 7), generator=torch.Generator().manual_seed(1))
    captured = {}
    norm = model.model.norm
    handle = norm.register_forward_pre_hook(lambda _m, args: captured.setdefault("x", args[0]))
    try:
        with torch.no_grad():
            out = model(input_ids=ids, output_hidden_states=True)
    finally:
        handle.remove()
    with torch.no_grad():
        normed = project(model, out.hidden_states[-1], normed=True)
        unnormed = project(model, captured["x"])
    torch.testing.assert_close(normed, out.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(unnormed, out.logits, rtol=1e-5, atol=1e-5)


def test_the_cohere_scale_is_what_makes_the_difference():
    """Without the scale the softmax of a Cohere model would be 8x too sharp (8B)."""
    model = tiny("cohere-8b")
    ids = torch.randint(3, 97, (1, 5), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        head = model.get_output_embeddings()(out.hidden_states[-1])
    torch.testing.assert_close(head * 0.125, out.logits)
    assert not torch.allclose(head, out.logits)
