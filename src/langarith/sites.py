"""Where the language neurons live: architecture -> the module whose output is the MLP activation.

For gated MLPs (Llama, Mistral, Gemma, Qwen, Cohere, ...) the site is ``mlp.act_fn`` of each
decoder layer: its output is ``act(gate_proj(x))``, the quantity LAPE counts (method.md §1.1),
before the product with ``up_proj``. A forward hook on it observes, and may replace, exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# model_type (config.model_type) -> attribute path of the activation module inside one decoder layer
GATED_ACT_FN_SITES: dict[str, str] = {
    "llama": "mlp.act_fn",
    "mistral": "mlp.act_fn",
    "cohere": "mlp.act_fn",
    "cohere2": "mlp.act_fn",
    "gemma": "mlp.act_fn",
    "gemma2": "mlp.act_fn",
    "gemma3": "mlp.act_fn",
    "gemma3_text": "mlp.act_fn",
    "qwen2": "mlp.act_fn",
    "qwen3": "mlp.act_fn",
}


class UnsupportedModelError(ValueError):
    """The model has no registered neuron site."""


@dataclass(frozen=True)
class NeuronSites:
    """The activation module of every decoder layer, in layer order."""

    model_type: str
    modules: tuple[nn.Module, ...]
    width: int

    @property
    def n_layers(self) -> int:
        return len(self.modules)


def _text_config(model: nn.Module):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layer list of a causal LM (``model.model.layers`` for the supported families)."""
    base = getattr(model, "base_model", model)
    for candidate in (base, getattr(base, "language_model", None), getattr(base, "model", None)):
        layers = getattr(candidate, "layers", None)
        if isinstance(layers, nn.ModuleList):
            return layers
    raise UnsupportedModelError(f"cannot find the decoder layers of {type(model).__name__}")


def _resolve(module: nn.Module, dotted: str) -> nn.Module | None:
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def find_sites(model: nn.Module) -> NeuronSites:
    """The neuron sites of ``model``, validated: one distinct module per layer, of the MLP width."""
    text_config = _text_config(model)
    model_type = getattr(text_config, "model_type", None) or model.config.model_type
    if model_type not in GATED_ACT_FN_SITES:
        supported = ", ".join(sorted(GATED_ACT_FN_SITES))
        raise UnsupportedModelError(
            f"model type {model_type!r} has no registered neuron site (supported: {supported}); "
            "add its activation module path to langarith.sites.GATED_ACT_FN_SITES"
        )
    path = GATED_ACT_FN_SITES[model_type]
    layers = decoder_layers(model)
    modules = []
    for index, layer in enumerate(layers):
        site = _resolve(layer, path)
        if site is None:
            raise UnsupportedModelError(f"layer {index} of {model_type!r} has no module {path!r}")
        modules.append(site)
    if len({id(m) for m in modules}) != len(modules):
        raise UnsupportedModelError(
            f"{model_type!r}: the {path!r} modules are shared between layers, so a hook "
            "cannot tell layers apart"
        )
    width = int(text_config.intermediate_size)
    return NeuronSites(model_type=model_type, modules=tuple(modules), width=width)


def check_site_widths(model: nn.Module, sites: NeuronSites) -> None:
    """Run one tiny forward pass and check each site fires once with ``sites.width`` neurons."""
    seen: list[int] = []
    handles = [
        module.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[-1]))
        for module in sites.modules
    ]
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model.base_model(input_ids=torch.zeros((1, 2), dtype=torch.long, device=device))
    finally:
        for handle in handles:
            handle.remove()
    if len(seen) != sites.n_layers or any(width != sites.width for width in seen):
        raise UnsupportedModelError(
            f"{sites.model_type!r}: expected {sites.n_layers} activations of width {sites.width} "
            f"per forward pass, saw widths {seen}"
        )
