"""Record activation statistics with forward hooks on the neuron sites.

The recorder accumulates on the model's device in exact integer counts and float64 sums; the
batch is reduced in the activation dtype first (cheap) and then added to the float64 totals.
``record_token_stream`` packs a token stream into fixed-length chunks (no padding: every row
of a batch has the same length) and runs only the decoder body: the LM head is never computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from langarith.activations import ActivationStats
from langarith.sites import NeuronSites, find_sites


class ActivationRecorder:
    """Context manager: while active, every forward pass adds its activations to the totals.

    ``skip_positions`` leading positions of every sequence are not counted (e.g. a BOS token).
    """

    def __init__(self, sites: NeuronSites, device: torch.device, skip_positions: int = 0):
        self.sites = sites
        self.skip_positions = skip_positions
        shape = (sites.n_layers, sites.width)
        self.n_active = torch.zeros(shape, dtype=torch.int64, device=device)
        self.act_sum = torch.zeros(shape, dtype=torch.float64, device=device)
        self.act_sq_sum = torch.zeros(shape, dtype=torch.float64, device=device)
        self.n_tokens = torch.zeros(sites.n_layers, dtype=torch.int64, device=device)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, layer: int):
        def hook(_module, _inputs, output: torch.Tensor) -> None:
            acts = output[:, self.skip_positions :, :] if output.dim() == 3 else output
            flat = acts.reshape(-1, acts.shape[-1])
            self.n_active[layer] += (flat > 0).sum(dim=0)
            self.act_sum[layer] += flat.sum(dim=0, dtype=torch.float32).double()
            self.act_sq_sum[layer] += flat.square().sum(dim=0, dtype=torch.float32).double()
            self.n_tokens[layer] += flat.shape[0]

        return hook

    def __enter__(self) -> ActivationRecorder:
        for layer, module in enumerate(self.sites.modules):
            self._handles.append(module.register_forward_hook(self._hook(layer)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def stats(self, metadata: dict | None = None) -> ActivationStats:
        counts = self.n_tokens.cpu().numpy()
        if len(set(counts.tolist())) > 1:
            raise RuntimeError(f"layers saw different token counts: {counts.tolist()}")
        return ActivationStats(
            n_tokens=int(counts[0]) if len(counts) else 0,
            n_active=self.n_active.cpu().numpy(),
            act_sum=self.act_sum.cpu().numpy(),
            act_sq_sum=self.act_sq_sum.cpu().numpy(),
            metadata=dict(metadata or {}),
        )


def tokenize_documents(tokenizer, texts: Iterable[str]) -> Iterator[list[int]]:
    """Token ids of each document, without special tokens (method.md §1.4)."""
    for text in texts:
        if text:
            yield tokenizer(text, add_special_tokens=False)["input_ids"]


def pack(
    documents: Iterable[Sequence[int]], chunk_tokens: int, max_tokens: int | None = None
) -> np.ndarray:
    """Concatenate documents into one id stream, truncated to ``max_tokens``; return the stream."""
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
    stream: list[int] = []
    for ids in documents:
        stream.extend(ids)
        if max_tokens is not None and len(stream) >= max_tokens:
            del stream[max_tokens:]
            break
    return np.asarray(stream, dtype=np.int64)


def chunk_batches(stream: np.ndarray, chunk_tokens: int, batch_size: int) -> Iterator[np.ndarray]:
    """Equal-length ``[rows, chunk_tokens]`` batches; the remainder is one last, shorter row."""
    n_full = len(stream) // chunk_tokens
    full = stream[: n_full * chunk_tokens].reshape(n_full, chunk_tokens)
    for start in range(0, n_full, batch_size):
        yield full[start : start + batch_size]
    tail = stream[n_full * chunk_tokens :]
    if len(tail):
        yield tail.reshape(1, -1)


@torch.inference_mode()
def record_token_stream(
    model,
    stream: np.ndarray,
    chunk_tokens: int,
    batch_size: int,
    bos_token_id: int | None = None,
    metadata: dict | None = None,
    progress: bool = True,
) -> ActivationStats:
    """Statistics of ``model``'s neuron sites over ``stream`` (BOS, if given, is not counted)."""
    sites = find_sites(model)
    device = next(model.parameters()).device
    skip = 1 if bos_token_id is not None else 0
    body = model.base_model  # the decoder without the LM head
    recorder = ActivationRecorder(sites, device, skip_positions=skip)
    n_chunks = -(-len(stream) // chunk_tokens)
    bar = tqdm(total=n_chunks, desc="recording", unit="chunk", disable=not progress)
    with recorder:
        for batch in chunk_batches(stream, chunk_tokens, batch_size):
            ids = torch.from_numpy(batch).to(device)
            if skip:
                bos = torch.full((ids.shape[0], 1), bos_token_id, dtype=ids.dtype, device=device)
                ids = torch.cat([bos, ids], dim=1)
            body(input_ids=ids, use_cache=False)
            bar.update(len(batch))
    bar.close()
    meta = {"chunk_tokens": chunk_tokens, "bos": bos_token_id is not None, **(metadata or {})}
    return recorder.stats(meta)


def record_corpus(
    model_dir: str,
    corpus: str,
    model_options: dict,
    recording: dict,
    metadata: dict | None = None,
) -> ActivationStats:
    """Load the prepared model, pack the corpus file and record its statistics."""
    import logging

    from langarith.corpora import read_corpus
    from langarith.models import load_model

    log = logging.getLogger("langarith")
    loaded = load_model(
        model_dir,
        dtype=model_options.get("dtype", "float32"),
        trust_remote_code=model_options.get("trust_remote_code", False),
    )
    tokenizer = loaded.tokenizer
    max_tokens = recording.get("max_tokens")
    stream = pack(
        tokenize_documents(tokenizer, read_corpus(corpus)), recording["chunk_tokens"], max_tokens
    )
    if len(stream) == 0:
        raise ValueError(f"corpus {corpus!r} yields no tokens")
    if max_tokens and len(stream) < max_tokens:
        log.warning(
            "corpus %s has %d tokens, fewer than the budget %d: using all",
            corpus,
            len(stream),
            max_tokens,
        )
    bos = tokenizer.bos_token_id if recording.get("prepend_bos", True) else None
    meta = {
        **(metadata or {}),
        "source": loaded.manifest.get("source"),
        "max_tokens": max_tokens,
    }
    return record_token_stream(
        loaded.model, stream, recording["chunk_tokens"], recording["batch_size"], bos, meta
    )
