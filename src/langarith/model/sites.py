"""Where the language neurons live: architecture -> the module whose output is the MLP activation.

A *neuron site* is the module, inside one decoder layer, whose output is ``act(W_1 x)``: the
activation of the MLP's first projection, the quantity LAPE counts (method.md §1.1). A forward
hook on it observes, and may replace, exactly that.

- Gated MLPs (Llama, Mistral, Cohere, Gemma 1-3, Qwen 2/3) compute
  ``down(act_fn(gate_proj(x)) * up_proj(x))``: the site is ``mlp.act_fn``, before the product
  with ``up_proj``.
- Phi-3 fuses gate and up into ``gate_up_proj`` and applies ``mlp.activation_fn`` to the gate
  half only (``gate, up = gate_up_proj(x).chunk(2)``; ``up * activation_fn(gate)``), so that
  module's output is again ``act(gate)`` of width ``intermediate_size``.
- Non-gated MLPs compute ``proj(act(fc(x)))``: GPT-2 ``mlp.act`` after ``c_fc``, GPT-NeoX
  ``mlp.act`` after ``dense_h_to_4h``, BLOOM ``mlp.gelu_impl`` after ``dense_h_to_4h``.

The *residual site* of a layer (:func:`find_residual_sites`) is the decoder layer module itself:
its output (the first element when it returns a tuple) is the residual stream after the layer,
``[rows, positions, hidden_size]``.

``find_sites`` validates the static structure (one distinct module per layer, projection width
equal to the config's MLP width); ``check_site_widths`` runs a two-token forward pass and checks
each site fires exactly once per layer with that width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from langarith.model.placement import input_device


class UnsupportedModelError(ValueError):
    """The model has no registered neuron site, or its structure does not match the registry."""


def _intermediate_size(config) -> int:
    return int(config.intermediate_size)


def _gpt2_inner(config) -> int:
    return int(config.n_inner) if config.n_inner is not None else 4 * int(config.n_embd)


def _four_hidden(config) -> int:
    return 4 * int(config.hidden_size)


@dataclass(frozen=True)
class SiteSpec:
    """How to find one family's neuron site inside a decoder layer.

    ``activation``: dotted path of the module whose output is the neuron activation.
    ``projection``: dotted path of the linear layer whose output feeds it.
    ``fused_halves``: how many equal parts the projection's output holds (2 for Phi-3's fused
    ``gate_up_proj``, whose first half is the gate); the site's width is one part.
    ``width``: the MLP width from the (text) config.
    """

    activation: str
    projection: str
    width: Callable[[object], int]
    gated: bool = True
    fused_halves: int = 1


_GATED = SiteSpec("mlp.act_fn", "mlp.gate_proj", _intermediate_size)

# config.model_type (of the text config) -> where its neuron site is
SITES: dict[str, SiteSpec] = {
    "llama": _GATED,
    "mistral": _GATED,
    "cohere": _GATED,
    "cohere2": _GATED,
    "gemma": _GATED,
    "gemma2": _GATED,
    "gemma3": _GATED,
    "gemma3_text": _GATED,
    "qwen2": _GATED,
    "qwen3": _GATED,
    "phi3": SiteSpec(
        "mlp.activation_fn", "mlp.gate_up_proj", _intermediate_size, gated=True, fused_halves=2
    ),
    "gpt2": SiteSpec("mlp.act", "mlp.c_fc", _gpt2_inner, gated=False),
    "gpt_neox": SiteSpec("mlp.act", "mlp.dense_h_to_4h", _intermediate_size, gated=False),
    "bloom": SiteSpec("mlp.gelu_impl", "mlp.dense_h_to_4h", _four_hidden, gated=False),
}

_HOW_TO_ADD = (
    "to add it, register a langarith.model.sites.SiteSpec in langarith.model.sites.SITES naming "
    "the module inside one decoder layer whose output is act(first MLP projection), that "
    "projection, and "
    "the config's MLP width, then add the family to tests/test_sites.py"
)

# where decoder layer lists live, relative to model.base_model
_LAYER_PATHS = ("layers", "h", "language_model.layers", "model.layers", "decoder.layers")


@dataclass(frozen=True)
class NeuronSites:
    """The site module of every decoder layer, in layer order: the MLP activation module
    (``kind`` ``mlp``) or the decoder layer itself (``residual``)."""

    model_type: str
    modules: tuple[nn.Module, ...]
    width: int
    kind: str = "mlp"

    @property
    def n_layers(self) -> int:
        return len(self.modules)


def _text_config(model: nn.Module):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _model_type(model: nn.Module) -> str:
    model_type = getattr(_text_config(model), "model_type", None)
    return model_type or getattr(model.config, "model_type", type(model).__name__)


def _resolve(module: nn.Module, dotted: str) -> nn.Module | None:
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layer list of a causal LM, wherever the family keeps it.

    Looks under ``model.base_model`` (``model.layers`` for Llama-likes, ``transformer.h`` for
    GPT-2 and BLOOM, ``gpt_neox.layers``, ``language_model.layers`` for multimodal wrappers) and
    checks the list has the config's number of layers.
    """
    base = getattr(model, "base_model", model)
    expected = getattr(_text_config(model), "num_hidden_layers", None)
    for root in (base, model):
        for path in _LAYER_PATHS:
            layers = _resolve(root, path)
            if isinstance(layers, nn.ModuleList) and len(layers) > 0:
                if expected is not None and len(layers) != int(expected):
                    continue
                return layers
    raise UnsupportedModelError(
        f"cannot find the decoder layers of {type(model).__name__} "
        f"(model type {_model_type(model)!r}; looked for {', '.join(_LAYER_PATHS)} "
        f"under base_model with {expected} entries)"
    )


def _out_features(module: nn.Module) -> int | None:
    """Output width of a linear layer (``nn.Linear`` or GPT-2's transposed ``Conv1D``)."""
    for name in ("out_features", "nf"):
        value = getattr(module, name, None)
        if isinstance(value, int):
            return value
    return None


def find_sites(model: nn.Module) -> NeuronSites:
    """The neuron sites of ``model``, validated: one distinct module per layer, of the MLP width.

    Raises ``UnsupportedModelError`` naming the model type (and how to register it) when the
    family is unknown or its modules do not look as the registry says.
    """
    model_type = _model_type(model)
    spec = SITES.get(model_type)
    if spec is None:
        supported = ", ".join(sorted(SITES))
        raise UnsupportedModelError(
            f"model type {model_type!r} ({type(model).__name__}) has no registered neuron site "
            f"(supported: {supported}); {_HOW_TO_ADD}"
        )
    width = spec.width(_text_config(model))
    layers = decoder_layers(model)
    modules = []
    for index, layer in enumerate(layers):
        site = _resolve(layer, spec.activation)
        if not isinstance(site, nn.Module):
            raise UnsupportedModelError(
                f"layer {index} of {model_type!r} has no module {spec.activation!r}; {_HOW_TO_ADD}"
            )
        projection = _resolve(layer, spec.projection)
        out = _out_features(projection) if projection is not None else None
        if out is None or out != width * spec.fused_halves:
            raise UnsupportedModelError(
                f"layer {index} of {model_type!r}: {spec.projection!r} should output "
                f"{width * spec.fused_halves} features (MLP width {width}), found {out}"
            )
        modules.append(site)
    if len({id(m) for m in modules}) != len(modules):
        raise UnsupportedModelError(
            f"{model_type!r}: the {spec.activation!r} modules are shared between layers, so a "
            "hook cannot tell layers apart"
        )
    return NeuronSites(model_type=model_type, modules=tuple(modules), width=width)


def find_residual_sites(model: nn.Module) -> NeuronSites:
    """The residual site of every decoder layer: the layer module, of width ``hidden_size``."""
    hidden = getattr(_text_config(model), "hidden_size", None)
    if hidden is None:
        hidden = getattr(_text_config(model), "n_embd", None)
    if hidden is None:
        raise UnsupportedModelError(
            f"model type {_model_type(model)!r}: the config names no hidden_size, the width of "
            "the residual stream"
        )
    layers = decoder_layers(model)
    return NeuronSites(_model_type(model), tuple(layers), int(hidden), kind="residual")


def site_output(output) -> torch.Tensor:
    """The site's tensor in a hook's ``output``: the output itself, or its first element when
    the module returns a tuple (decoder layers of some families)."""
    return output[0] if isinstance(output, tuple) else output


def with_site_output(output, tensor: torch.Tensor):
    """``output`` with its site tensor replaced by ``tensor`` (what a hook returns)."""
    return (tensor, *output[1:]) if isinstance(output, tuple) else tensor


def check_site_widths(model: nn.Module, sites: NeuronSites) -> None:
    """Run a two-token forward pass of the decoder body and check every site fires exactly once,
    with ``sites.width`` neurons, in layer order."""
    seen: list[tuple[int, int]] = []

    def make_hook(layer: int):
        def hook(_module, _inputs, output) -> None:
            width = output.shape[-1] if isinstance(output, torch.Tensor) else -1
            seen.append((layer, width))

        return hook

    handles = [
        module.register_forward_hook(make_hook(layer)) for layer, module in enumerate(sites.modules)
    ]
    try:
        with torch.no_grad():
            ids = torch.zeros((1, 2), dtype=torch.long, device=input_device(model))
            model.base_model(input_ids=ids, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    expected = [(layer, sites.width) for layer in range(sites.n_layers)]
    if seen != expected:
        raise UnsupportedModelError(
            f"{sites.model_type!r}: expected each of {sites.n_layers} sites to fire once with "
            f"width {sites.width} per forward pass, saw (layer, width) {seen}"
        )
