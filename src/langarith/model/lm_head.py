"""The LM head applied to hidden states as the model's own forward applies it: final norm, output
embeddings, Cohere's ``logit_scale`` and Gemma's final logit soft-capping (used by the logit lens
and perplexity)."""

from __future__ import annotations

import torch

_NORM_PATHS = ("norm", "final_layernorm", "ln_f", "final_layer_norm", "model.norm")


def final_norm(model) -> torch.nn.Module:
    """The norm applied to the last decoder layer's output before the LM head."""
    base = getattr(model, "base_model", model)
    for path in _NORM_PATHS:
        module = base
        for part in path.split("."):
            module = getattr(module, part, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise ValueError(f"cannot find the final norm of {type(model).__name__} ({_NORM_PATHS})")


def project(model, hidden: torch.Tensor, normed: bool = False) -> torch.Tensor:
    """Logits of hidden states ``[..., d]``, as the model's forward computes them: final norm
    (unless ``normed``), LM head, the logit scale of models that have one (Cohere, Cohere 2:
    ``logits * logit_scale``, 0.125 in Aya Expanse 8B, 0.0625 in 32B) and the final logit
    soft-capping of those that have one (Gemma 2/3)."""
    if not normed:
        hidden = final_norm(model)(hidden)
    head = model.get_output_embeddings()
    logits = head(hidden.to(head.weight.dtype))
    scale = getattr(model.config, "logit_scale", None)
    if scale is not None and scale != 1:
        logits = logits * scale
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits
