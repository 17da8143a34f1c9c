"""Sentence embeddings from a causal LM itself: the mean of one decoder layer's output states
over a text's own tokens — the proxy encoder of output relevance (``encoder: model`` in
``quality.relevance``; :mod:`langarith.experiments.relevance`).

Exactly: the text is tokenized as the model reads it (``add_special_tokens=True``, so with BOS
where the tokenizer adds one) and cut to ``max_tokens`` tokens; the states are the output of
decoder layer ``layer`` (0-based, as the neurons' layers are numbered), i.e. the residual stream
after ``layer + 1`` blocks — ``hidden_states[layer + 1]`` of transformers'
``output_hidden_states``, taken by a forward hook before any final norm; the mean runs over the
positions that are neither padding nor a special token (BOS, EOS: the tokenizer's
``special_tokens_mask``), in float64. A text with no such position (empty) is the zero vector.
The layers after ``layer`` are never run.

Texts are batched with right padding: under causal attention a real token never attends to a
pad on its right, so a batch gives each text the states it has alone (to float rounding).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

MIDDLE = "middle"


def resolve_layer(layer: int | str, n_layers: int) -> int:
    """``middle`` → ``n_layers // 2``; an int must lie in ``0 .. n_layers - 1``."""
    if layer == MIDDLE:
        return n_layers // 2
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ValueError(f"layer {layer!r} is neither 'middle' nor an integer")
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer {layer} is outside 0-{n_layers - 1} (the model has {n_layers})")
    return layer


class _Reached(Exception):
    """Raised by the hook once the layer's output is taken: the rest of the forward is skipped."""


def mean_pooled_states(
    model,
    tokenizer,
    texts: Sequence[str],
    layer: int | str = MIDDLE,
    batch_size: int = 16,
    max_tokens: int = 512,
) -> np.ndarray:
    """``[len(texts), hidden]`` float64: each text's mean output state of decoder ``layer``."""
    from langarith.model.placement import input_device
    from langarith.model.sites import decoder_layers

    layers = decoder_layers(model)
    index = resolve_layer(layer, len(layers))
    hidden = int(model.get_input_embeddings().embedding_dim)
    out = np.zeros((len(texts), hidden), dtype=np.float64)
    encoded = {}
    for text in dict.fromkeys(texts):
        enc = tokenizer(
            text, add_special_tokens=True, return_special_tokens_mask=True, truncation=False
        )
        ids = enc["input_ids"][:max_tokens]
        keep = [not s for s in enc["special_tokens_mask"][:max_tokens]]
        if any(keep):
            encoded[text] = (ids, keep)
    order = sorted(encoded, key=lambda t: len(encoded[t][0]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = input_device(model)
    taken: list[torch.Tensor] = []

    def hook(_module, _args, output):
        taken.append(output[0] if isinstance(output, tuple) else output)
        raise _Reached

    vectors: dict[str, np.ndarray] = {}
    handle = layers[index].register_forward_hook(hook)
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                width = max(len(encoded[t][0]) for t in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                attention = torch.zeros((len(batch), width), dtype=torch.long)
                pool = torch.zeros((len(batch), width), dtype=torch.float64)
                for row, text in enumerate(batch):
                    ids, keep = encoded[text]
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    attention[row, : len(ids)] = 1
                    pool[row, : len(ids)] = torch.tensor(keep, dtype=torch.float64)
                taken.clear()
                try:
                    model.base_model(
                        input_ids=input_ids.to(device),
                        attention_mask=attention.to(device),
                        use_cache=False,
                    )
                except _Reached:
                    pass
                if not taken:
                    raise RuntimeError(f"decoder layer {index} did not run")
                states = taken[0].to(device="cpu", dtype=torch.float64)
                means = (states * pool[..., None]).sum(dim=1) / pool.sum(dim=1, keepdim=True)
                for text, vector in zip(batch, means.numpy()):
                    vectors[text] = vector
    finally:
        handle.remove()
    for i, text in enumerate(texts):
        if text in vectors:
            out[i] = vectors[text]
    return out
