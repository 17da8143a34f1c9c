"""Fluency beside success: repetition, diversity and perplexity of generated outputs.

Text is cut into *units* without a tokenizer, so the measures are the same for every model:
runs of letters/digits are words, every CJK ideograph or kana is a unit of its own (those
scripts do not separate words), and every other non-space character (punctuation, Tibetan
tsheg) is a unit too.

* ``repetition``: the share of n-gram positions whose n-gram occurs more than once in the text
  (0 for a text with no repeated n-gram, 1 for a loop such as "a b a b a b"); 0 without n-grams.
* ``longest_run``: the most consecutive copies of one block of up to ``max_period`` units
  ("la la la la" → 4; a normal sentence → 1; empty → 0).
* ``distinct_n``: distinct n-grams ÷ n-grams (``None`` when the text has no n-gram).
* ``perplexity``: exp of the mean negative log-likelihood of the output's tokens under the
  *unsteered* model, conditioned on nothing but BOS (fluency of the text itself, whatever the
  prompt's language); ``None`` for an empty output.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence

import polars as pl

_UNIT = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"  # kana, CJK ideographs: one each
    r"|[^\W_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"  # words
    r"|[^\w\s]|_",  # punctuation and other symbols, one each
)


def units(text: str) -> list[str]:
    """``text`` cut into comparable units (case-folded)."""
    return _UNIT.findall(text.casefold())


def ngrams(seq: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def repetition(seq: Sequence[str], n: int = 3) -> float:
    """Share of n-gram positions whose n-gram occurs more than once."""
    grams = ngrams(seq, n)
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(counts[g] > 1 for g in grams) / len(grams)


def distinct_n(seq: Sequence[str], n: int) -> float | None:
    grams = ngrams(seq, n)
    return len(set(grams)) / len(grams) if grams else None


def longest_run(seq: Sequence[str], max_period: int = 8) -> int:
    """Most consecutive copies of one block of ``1..max_period`` units."""
    if not seq:
        return 0
    best = 1
    for period in range(1, min(max_period, len(seq) // 2) + 1):
        for start in range(period):
            copies = 1
            for pos in range(start + period, len(seq) - period + 1, period):
                if seq[pos : pos + period] == seq[pos - period : pos]:
                    copies += 1
                    best = max(best, copies)
                else:
                    copies = 1
    return best


def text_quality(text: str, n: int = 3, max_period: int = 8) -> dict:
    seq = units(text)
    return {
        "n_units": len(seq),
        "repetition": repetition(seq, n),
        "longest_run": longest_run(seq, max_period),
        "distinct_1": distinct_n(seq, 1),
        "distinct_2": distinct_n(seq, 2),
    }


QUALITY_SCHEMA = {
    "n_units": pl.Int64,
    "repetition": pl.Float64,
    "longest_run": pl.Int64,
    "distinct_1": pl.Float64,
    "distinct_2": pl.Float64,
}


def add_quality(frame: pl.DataFrame, n: int = 3, max_period: int = 8) -> pl.DataFrame:
    """``frame`` (with an ``output`` column) plus the text measures of each output."""
    rows = [text_quality(t, n, max_period) for t in frame["output"].to_list()]
    measures = pl.DataFrame(rows, schema=QUALITY_SCHEMA, orient="row")
    return pl.concat([frame, measures], how="horizontal")


def fluent(repetition_share: float, max_repetition: float) -> bool:
    return repetition_share <= max_repetition


def success_and_fluent(pred_lang: str, target_lang: str, rep: float, max_repetition: float) -> bool:
    """In the target language (lid.176 top-1) AND under the repetition threshold."""
    return pred_lang == target_lang and fluent(rep, max_repetition)


def add_flags(frame: pl.DataFrame, max_repetition: float) -> pl.DataFrame:
    """``success``, ``fluent`` and ``success_and_fluent`` columns (needs ``pred_lang``,
    ``target_lang`` and ``repetition``)."""
    success = pl.col("pred_lang") == pl.col("target_lang")
    is_fluent = pl.col("repetition") <= max_repetition
    return frame.with_columns(
        success.alias("success"),
        is_fluent.alias("fluent"),
        (success & is_fluent).alias("success_and_fluent"),
    )


SUMMARY_KEYS = ["selection", "condition", "target_lang"]


def summarise(frame: pl.DataFrame, max_repetition: float) -> pl.DataFrame:
    """Per (selection, condition, target language) and per (selection, condition) overall
    (``target_lang = all``): shares of successful, fluent and successful-and-fluent outputs,
    mean repetition, mean distinct-2 and median perplexity (if measured)."""
    frame = add_flags(frame, max_repetition)
    ppl = "perplexity" in frame.columns
    aggs = [
        pl.len().alias("n"),
        pl.col("success").mean().alias("success_rate"),
        pl.col("fluent").mean().alias("fluent_rate"),
        pl.col("success_and_fluent").mean().alias("success_and_fluent"),
        pl.col("repetition").mean().alias("mean_repetition"),
        pl.col("longest_run").mean().cast(pl.Float64).alias("mean_longest_run"),
        pl.col("distinct_2").mean().alias("mean_distinct_2"),
        (pl.col("perplexity").median() if ppl else pl.lit(None, pl.Float64)).alias(
            "median_perplexity"
        ),
    ]
    cells = frame.group_by(SUMMARY_KEYS).agg(*aggs)
    overall = (
        frame.group_by(["selection", "condition"])
        .agg(*aggs)
        .with_columns(pl.lit("all").alias("target_lang"))
        .select(cells.columns)
    )
    return (
        pl.concat([cells, overall])
        .with_columns(pl.lit(max_repetition).alias("max_repetition"))
        .cast({"n": pl.Int64, "median_perplexity": pl.Float64})
        .sort(SUMMARY_KEYS)
    )


HEAD_CHUNK = 128  # positions per LM-head slice (128 × 262k float32 logits = 134 MB)


def perplexities(
    model, tokenizer, texts: Sequence[str], batch_size: int = 16
) -> list[float | None]:
    """Perplexity of each text under ``model`` given only BOS: texts are deduplicated, sorted by
    length and batched (right padding); the LM head is applied only at real positions."""
    import torch

    from langarith.logit_lens import project
    from langarith.offload import input_device

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
) -> pl.DataFrame:
    """The ``quality_forcing`` job: the langid table of one generation file plus the text
    measures and, if ``model_dir`` is given, each output's perplexity under the unsteered model."""
    from langarith.io import write_parquet

    frame = add_quality(pl.read_parquet(langid_file), ngram, max_period)
    if model_dir is not None:
        from langarith.models import load_configured_model

        loaded = load_configured_model(model_dir, model_options or {})
        ppl = perplexities(loaded.model, loaded.tokenizer, frame["output"].to_list(), batch_size)
        frame = frame.with_columns(pl.Series("perplexity", ppl, dtype=pl.Float64))
    write_parquet(frame, output)
    return frame


QUALITY_DEFAULTS = {
    "ngram": 3,
    "max_period": 8,
    "max_repetition": 0.5,
    "perplexity": True,
    "batch_size": 16,
}


def resolve_quality(config: Mapping) -> dict | None:
    """The ``quality`` section with defaults (without its ``calibration`` part), or ``None``."""
    if "quality" not in config:
        return None
    raw = {k: v for k, v in dict(config["quality"] or {}).items() if k != "calibration"}
    return {**QUALITY_DEFAULTS, **raw}
