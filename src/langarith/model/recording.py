"""Record activation statistics with forward hooks on the neuron sites.

Per layer and neuron the recorder keeps exact int64 counts of ``a > 0`` and float64 sums of
``a`` and ``a²``, on the device the layer runs on (so a model split across devices by
accelerate is recorded without moving activations). Each batch is reduced by
``reduce_activations``: on CPU with BLAS matrix-vector products against a vector of ones (a
GEMV reads the activations at memory speed, 2-6x faster than PyTorch's CPU column reductions,
and needs no copy to drop the skipped BOS position of a strided view); on GPUs with one fused
reduction kernel per statistic.

Exactness, by activation dtype (the batch totals are added to the float64 running totals):

* counts are exact in every dtype (a float32 sum of 0/1 values is exact below 2**24 positions
  per row, then int64);
* bfloat16 / float16 activations (a model loaded in that dtype, e.g. ``dtype: auto`` on bf16
  hardware): upcast to float64 before anything is summed, so ``Σa`` and ``Σa²`` are the float64
  sums of the activations exactly as the model computed them (the square of a bf16 value is
  exact in float64); nothing is lost beyond float64 rounding;
* float32 activations: summed per row in float32, then across rows in float64, exactly as
  before ``dtype: auto`` existed (float32 runs stay byte-identical with earlier results); the
  per-row error is at most about ``positions × 2⁻²⁴`` of the row's ``Σ|a|``.

``record_token_stream`` packs a token stream into fixed-length chunks (no padding: every row
of a batch has the same length) and runs only the decoder body: the LM head is never computed.
``record_sites`` records several site kinds in the same forward passes: the MLP neurons and the
residual stream (each decoder layer's output, ``[rows, positions, hidden]``; the same four
statistics per hidden dimension, of which the DiffMean directions use the sums and the norms
the sums of squares).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from langarith.core.plans import SITE_KINDS
from langarith.io.activations import ActivationStats
from langarith.model.hooks import ForwardHooks
from langarith.model.placement import input_device
from langarith.model.sites import (
    NeuronSites,
    check_site_widths,
    find_residual_sites,
    find_sites,
    site_output,
)

# float32 represents every integer up to 2**24 exactly: the bound on one row's partial count
_MAX_EXACT_POSITIONS = 2**24


REDUCTIONS = ("auto", "gemv", "fused")


def reduce_activations(
    acts: torch.Tensor, method: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-neuron ``(count of a > 0 [int64], Σa [float64], Σa² [float64])`` of one batch.

    ``acts`` is ``[rows, positions, neurons]`` in any float dtype and may be a strided view
    (e.g. with leading positions sliced off). Counts are exact; the sums are accumulated in
    float32 within a row for float32 activations and in float64 throughout for any other
    dtype (the module docstring), and returned in float64. ``method``:

    - ``gemv``: matrix-vector products against a vector of ones (two elementwise passes make
      the ``a > 0`` and ``a²`` operands): float32 for float32 activations; for bf16/fp16 ones
      the count in float32 and the sums on a float64 copy. On CPU this is 2-6x faster than
      column reductions (``tensor.sum(dim=0)``), which PyTorch runs poorly there.
    - ``fused``: one reduction kernel per statistic reading the activation dtype directly
      (``sum``, ``vector_norm`` accumulating in float32 for float32 activations and float64
      otherwise, a count of ``a > 0``), with no copy of bf16/fp16 activations: least memory
      traffic where reductions run at memory bandwidth, i.e. on GPUs.
    - ``auto``: ``gemv`` on CPU, ``fused`` elsewhere.
    """
    if acts.dim() != 3:
        raise ValueError(
            f"expected activations [rows, positions, neurons], got {tuple(acts.shape)}"
        )
    if method not in REDUCTIONS:
        raise ValueError(f"method must be one of {', '.join(REDUCTIONS)}, got {method!r}")
    if method == "auto":
        method = "gemv" if acts.device.type == "cpu" else "fused"
    if method == "fused":
        dims = (0, 1)
        accumulate = torch.float32 if acts.dtype == torch.float32 else torch.float64
        n_active = (acts > 0).sum(dims)
        act_sum = acts.sum(dims, dtype=accumulate).double()
        norm = torch.linalg.vector_norm(acts, 2, dims, dtype=accumulate)
        return n_active, act_sum, norm.double().square()
    rows, positions, width = acts.shape
    if positions >= _MAX_EXACT_POSITIONS:
        raise ValueError(f"sequences of {positions} positions exceed exact float32 counting")
    if acts.dtype != torch.float32:
        return _reduce_float64(acts)
    x = acts  # float32 activations: the same operations as before dtype auto existed
    ones = torch.ones(positions, dtype=torch.float32, device=x.device)
    act_sum = torch.matmul(ones, x).sum(0, dtype=torch.float64)
    scratch = torch.empty((rows, positions, width), dtype=torch.float32, device=x.device)
    torch.gt(x, 0, out=scratch)
    n_active = torch.matmul(ones, scratch).to(torch.int64).sum(0)
    squares = torch.square(x, out=scratch)
    act_sq_sum = torch.matmul(ones, squares).sum(0, dtype=torch.float64)
    return n_active, act_sum, act_sq_sum


def _reduce_float64(acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``gemv`` for bf16/fp16 activations: the count from a float32 0/1 operand (exact), the
    sums from a float64 copy, so no sum is rounded beyond float64."""
    rows, positions, width = acts.shape
    scratch = torch.empty((rows, positions, width), dtype=torch.float32, device=acts.device)
    torch.gt(acts, 0, out=scratch)
    ones = torch.ones(positions, dtype=torch.float32, device=acts.device)
    n_active = torch.matmul(ones, scratch).to(torch.int64).sum(0)
    del scratch
    x = acts.to(torch.float64, copy=True)  # a copy: squared in place below, never the model's
    ones = ones.double()
    act_sum = torch.matmul(ones, x).sum(0)
    act_sq_sum = torch.matmul(ones, x.square_()).sum(0)
    return n_active, act_sum, act_sq_sum


@dataclass
class _LayerTotals:
    """Running totals of one layer, on the device the layer's activations arrive on."""

    n_active: torch.Tensor
    act_sum: torch.Tensor
    act_sq_sum: torch.Tensor
    n_tokens: int = 0

    @classmethod
    def zeros(cls, width: int, device: torch.device) -> _LayerTotals:
        return cls(
            n_active=torch.zeros(width, dtype=torch.int64, device=device),
            act_sum=torch.zeros(width, dtype=torch.float64, device=device),
            act_sq_sum=torch.zeros(width, dtype=torch.float64, device=device),
        )


class ActivationRecorder(ForwardHooks):
    """Context manager: while active, every forward pass adds its activations to the totals.

    ``skip_positions`` leading positions of every sequence are not counted (e.g. a BOS token).
    ``device``: where to keep the totals; ``None`` keeps each layer's totals on the device its
    activations arrive on (no transfers; works for models split across devices).
    ``reduction``: how a batch is reduced (``reduce_activations``' ``method``).
    """

    def __init__(
        self,
        sites: NeuronSites,
        device: torch.device | str | None = None,
        skip_positions: int = 0,
        reduction: str = "auto",
    ):
        if skip_positions < 0:
            raise ValueError(f"skip_positions must be >= 0, got {skip_positions}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction
        self.sites = sites
        self.device = torch.device(device) if device is not None else None
        self.skip_positions = skip_positions
        self._totals: list[_LayerTotals | None] = [None] * sites.n_layers

    def _add(self, layer: int, output: torch.Tensor) -> None:
        if output.dim() == 2:  # [tokens, neurons]: one flattened sequence
            if self.skip_positions:
                raise ValueError(
                    "cannot skip leading positions of flattened [tokens, neurons] activations"
                )
            output = output.unsqueeze(0)
        acts = output[:, self.skip_positions :, :]
        n_active, act_sum, act_sq_sum = reduce_activations(acts, self.reduction)
        totals = self._totals[layer]
        if totals is None:
            device = self.device if self.device is not None else output.device
            totals = self._totals[layer] = _LayerTotals.zeros(acts.shape[-1], device)
        device = totals.n_active.device
        totals.n_active += n_active.to(device)
        totals.act_sum += act_sum.to(device)
        totals.act_sq_sum += act_sq_sum.to(device)
        totals.n_tokens += acts.shape[0] * acts.shape[1]

    def _hook(self, layer: int):
        def hook(_module, _inputs, output) -> None:
            self._add(layer, site_output(output).detach())

        return hook

    def hooks(self):
        return [(module, self._hook(layer)) for layer, module in enumerate(self.sites.modules)]

    def stats(self, metadata: dict | None = None) -> ActivationStats:
        """The statistics recorded so far (zeros if no forward pass ran)."""
        if all(totals is None for totals in self._totals):
            empty = ActivationStats.zeros(self.sites.n_layers, self.sites.width)
            empty.metadata = dict(metadata or {})
            return empty
        counts = [totals.n_tokens if totals is not None else 0 for totals in self._totals]
        if len(set(counts)) > 1:
            raise RuntimeError(f"layers saw different token counts: {counts}")
        totals = [t for t in self._totals if t is not None]
        return ActivationStats(
            n_tokens=counts[0],
            n_active=torch.stack([t.n_active.cpu() for t in totals]).numpy(),
            act_sum=torch.stack([t.act_sum.cpu() for t in totals]).numpy(),
            act_sq_sum=torch.stack([t.act_sq_sum.cpu() for t in totals]).numpy(),
            metadata=dict(metadata or {}),
        )


def tokenize_documents(
    tokenizer, texts: Iterable[str], batch_documents: int = 256
) -> Iterator[list[int]]:
    """Token ids of each non-empty document, without special tokens (method.md §1.4).

    Documents are encoded ``batch_documents`` at a time (a fast tokenizer encodes a batch in
    parallel), and yielded one by one in order.
    """
    batch: list[str] = []
    for text in texts:
        if text:
            batch.append(text)
        if len(batch) >= batch_documents:
            yield from tokenizer(batch, add_special_tokens=False)["input_ids"]
            batch = []
    if batch:
        yield from tokenizer(batch, add_special_tokens=False)["input_ids"]


def pack(
    documents: Iterable[Sequence[int]], chunk_tokens: int, max_tokens: int | None = None
) -> np.ndarray:
    """Concatenate documents into one int64 id stream, truncated to ``max_tokens``.

    Documents are held as int32 arrays while reading: a paper-scale budget of 64 M tokens takes
    ~0.25 GB (0.5 GB once joined as int64), against several GB as a Python list of ints.
    """
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
    parts: list[np.ndarray] = []
    total = 0
    for ids in documents:
        part = np.asarray(ids, dtype=np.int32)  # raises OverflowError for ids >= 2**31
        if max_tokens is not None and total + len(part) >= max_tokens:
            parts.append(part[: max_tokens - total])
            break
        parts.append(part)
        total += len(part)
    return np.concatenate(parts, dtype=np.int64) if parts else np.zeros(0, dtype=np.int64)


def chunk_batches(stream: np.ndarray, chunk_tokens: int, batch_size: int) -> Iterator[np.ndarray]:
    """Equal-length ``[rows, chunk_tokens]`` batches; the remainder is one last, shorter row."""
    n_full = len(stream) // chunk_tokens
    full = stream[: n_full * chunk_tokens].reshape(n_full, chunk_tokens)
    for start in range(0, n_full, batch_size):
        yield full[start : start + batch_size]
    tail = stream[n_full * chunk_tokens :]
    if len(tail):
        yield tail.reshape(1, -1)


def record_token_stream(
    model,
    stream: np.ndarray,
    chunk_tokens: int,
    batch_size: int,
    bos_token_id: int | None = None,
    metadata: dict | None = None,
    progress: bool = True,
) -> ActivationStats:
    """Statistics of ``model``'s neuron sites over ``stream`` (BOS, if given, is not counted):
    :func:`record_sites` of the ``mlp`` site alone."""
    return record_sites(
        model, stream, chunk_tokens, batch_size, bos_token_id, metadata, progress, ("mlp",)
    )["mlp"]


@torch.inference_mode()
def record_sites(
    model,
    stream: np.ndarray,
    chunk_tokens: int,
    batch_size: int,
    bos_token_id: int | None = None,
    metadata: dict | None = None,
    progress: bool = True,
    sites: Sequence[str] = SITE_KINDS,
) -> dict[str, ActivationStats]:
    """``{site: statistics}`` of ``model``'s ``sites`` over ``stream``, recorded in the same
    forward passes (BOS, if given, is not counted).

    Runs ``model.base_model`` (the decoder body without the LM head). The neuron sites are
    validated first with a two-token forward pass (``check_site_widths``). Works for models
    split across devices or offloaded by accelerate: inputs go to the embedding's execution
    device.
    """
    unknown = [site for site in sites if site not in SITE_KINDS]
    if unknown or not sites:
        raise ValueError(f"sites must be some of {', '.join(SITE_KINDS)}, got {list(sites)}")
    neuron_sites = find_sites(model)
    check_site_widths(model, neuron_sites)
    found = {"mlp": neuron_sites}
    if "residual" in sites:
        found["residual"] = find_residual_sites(model)
    device = input_device(model)
    skip = 1 if bos_token_id is not None else 0
    body = model.base_model  # the decoder without the LM head
    recorders = {site: ActivationRecorder(found[site], skip_positions=skip) for site in sites}
    n_chunks = -(-len(stream) // chunk_tokens)
    bar = tqdm(total=n_chunks, desc="recording", unit="chunk", disable=not progress)
    with contextlib.ExitStack() as active:
        for recorder in recorders.values():
            active.enter_context(recorder)
        for batch in chunk_batches(stream, chunk_tokens, batch_size):
            ids = torch.from_numpy(batch).to(device)
            if skip:
                bos = torch.full((ids.shape[0], 1), bos_token_id, dtype=ids.dtype, device=device)
                ids = torch.cat([bos, ids], dim=1)
            body(input_ids=ids, use_cache=False)
            bar.update(len(batch))
    bar.close()
    meta = {"chunk_tokens": chunk_tokens, "bos": bos_token_id is not None, **(metadata or {})}
    return {site: recorder.stats(meta) for site, recorder in recorders.items()}


def record_corpus(
    model_dir: str,
    corpus: str,
    model_options: dict,
    recording: dict,
    metadata: dict | None = None,
    shard: int = 1,
    shards: int = 1,
    sites: Sequence[str] = SITE_KINDS,
) -> dict[str, ActivationStats]:
    """Load the prepared model, pack the corpus file and record the statistics of its
    ``sites`` (``{site: statistics}``, :func:`record_sites`).

    The corpus is read and tokenized as it streams and left at ``recording.max_tokens``. Fewer
    tokens than the budget: a warning if the corpus holds all its source's text, an error
    naming the budget its fetch stopped at (``corpus.max_chars``) otherwise.

    With ``shards`` > 1 only shard ``shard`` (1-based) of the packed stream is recorded
    (``langarith.io.shards.shard_bounds``); every shard packs the whole stream to find its part.
    """
    import logging

    from langarith.io.corpora import corpus_cut_by, iter_corpus
    from langarith.io.shards import check_shard, shard_bounds
    from langarith.model.loading import load_configured_model

    check_shard(shard, shards)

    log = logging.getLogger("langarith")
    loaded = load_configured_model(model_dir, model_options)
    tokenizer = loaded.tokenizer
    max_tokens = recording.get("max_tokens")
    stream = pack(
        tokenize_documents(tokenizer, iter_corpus(corpus)), recording["chunk_tokens"], max_tokens
    )
    if len(stream) == 0:
        raise ValueError(f"corpus {corpus!r} yields no tokens")
    if max_tokens and len(stream) < max_tokens:
        cut_by = corpus_cut_by(corpus)
        if cut_by:
            key, _, value = cut_by.partition("=")
            raise ValueError(
                f"{key}: the corpus {corpus} stops at this budget ({value}) and gives "
                f"{len(stream)} tokens, fewer than recording.max_tokens {max_tokens}: raise {key}"
            )
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
        "shards": shards,
    }
    if shards > 1:
        start, stop = shard_bounds(
            len(stream), recording["chunk_tokens"], recording["batch_size"], shard, shards
        )
        log.info("shard %d of %d: tokens %d to %d of %d", shard, shards, start, stop, len(stream))
        if start == stop:
            log.warning("shard %d of %d is empty: the corpus has too few batches", shard, shards)
        stream = stream[start:stop]
        meta["shard"] = shard
    return record_sites(
        loaded.model,
        stream,
        recording["chunk_tokens"],
        recording["batch_size"],
        bos,
        meta,
        sites=sites,
    )
