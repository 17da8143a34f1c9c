"""Perplexity of generated outputs under the unsteered model, beside the text measures of
:mod:`langarith.core.text_quality`: the ``quality_forcing`` job.

``perplexity``: exp of the mean negative log-likelihood of the output's tokens under the
*unsteered* model, conditioned on nothing but BOS (fluency of the text itself, whatever the
prompt's language); ``None`` for an empty output. ``relevance`` (when configured): the output's
similarity to the unsteered answer to the same prompt (:mod:`langarith.experiments.relevance`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import polars as pl

from langarith.core.text_quality import add_quality
from langarith.io.readers import read_parquet

HEAD_CHUNK = 128  # positions per LM-head slice (128 × 262k float32 logits = 134 MB)


def perplexities(
    model, tokenizer, texts: Sequence[str], batch_size: int = 16
) -> list[float | None]:
    """Perplexity of each text under ``model`` given only BOS: texts are deduplicated, sorted by
    length and batched (right padding); the LM head is applied only at real positions."""
    import torch

    from langarith.model.lm_head import project
    from langarith.model.placement import input_device

    unique = sorted({t for t in texts if t.strip()})
    ids = {t: tokenizer(t, add_special_tokens=True)["input_ids"] for t in unique}
    if ids and tokenizer.bos_token_id is not None:
        ids = {
            t: v if v and v[0] == tokenizer.bos_token_id else [tokenizer.bos_token_id, *v]
            for t, v in ids.items()
        }
    order = sorted(unique, key=lambda t: len(ids[t]))
    result: dict[str, float | None] = {}
    device = input_device(model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(ids[t]) for t in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, text in enumerate(batch):
                seq = ids[text]
                input_ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            hidden = model.base_model(
                input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False
            ).last_hidden_state
            # position i predicts token i + 1; keep positions whose next token is real
            keep = mask[:, 1:].bool()
            states = hidden[:, :-1][keep.to(hidden.device)]
            targets = input_ids[:, 1:][keep].to(hidden.device)
            nll = torch.cat(  # the LM head in slices: [positions, vocabulary] is large
                [
                    torch.nn.functional.cross_entropy(
                        project(model, states[i : i + HEAD_CHUNK], normed=True).float(),
                        targets[i : i + HEAD_CHUNK],
                        reduction="none",
                    )
                    for i in range(0, len(states), HEAD_CHUNK)
                ]
            )
            counts = keep.sum(dim=1).tolist()
            offset = 0
            for text, count in zip(batch, counts):
                chunk = nll[offset : offset + count]
                offset += count
                result[text] = math.exp(float(chunk.mean())) if count else None
    return [result.get(t) for t in texts]


def run_quality_job(
    langid_file: str,
    output: str,
    ngram: int = 3,
    max_period: int = 8,
    model_dir: str | None = None,
    model_options: Mapping | None = None,
    batch_size: int = 16,
    perplexity: bool = True,
    relevance: Mapping | None = None,
    reference_file: str | None = None,
    threads: int | None = None,
) -> pl.DataFrame:
    """The ``quality_forcing`` job: the langid table of one generation file plus the text
    measures, each output's perplexity under the unsteered model (``perplexity`` and a
    ``model_dir``) and, with ``relevance`` settings, each output's relevance to the unsteered
    answer in ``reference_file`` (the unsteered condition's generations). The model is loaded
    once, for both, when either needs it."""
    from langarith.io.atomic import write_parquet

    frame = add_quality(read_parquet(langid_file), ngram, max_period)
    needs_model = perplexity or (relevance is not None and relevance["encoder"] == "model")
    loaded = None
    if model_dir is not None and needs_model:
        from langarith.model.loading import load_configured_model

        loaded = load_configured_model(model_dir, model_options or {})
    if perplexity and loaded is not None:
        ppl = perplexities(loaded.model, loaded.tokenizer, frame["output"].to_list(), batch_size)
        frame = frame.with_columns(pl.Series("perplexity", ppl, dtype=pl.Float64))
    if relevance is not None:
        from langarith.experiments.relevance import make_encoder, output_relevance

        if reference_file is None:
            raise ValueError("relevance needs the unsteered generations (reference_file)")
        encode = make_encoder(relevance, loaded, threads)
        frame = output_relevance(frame, read_parquet(reference_file), encode, reference_file)
    write_parquet(frame, output)
    return frame
