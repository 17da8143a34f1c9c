"""Logit lens (method.md §4.7): what each layer would predict if it were the last.

For each prompt, the hidden state at the last position after every decoder layer goes through
the model's final norm and LM head (and Gemma's logit soft-capping, if configured); of the
top-k next tokens, the probability mass of those whose *single decoded token* lid.176 assigns to
the target language is the "target mass" of that layer. Done with and without steering, it shows
at which depth an intervention moves the prediction towards the target language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl
import torch

from langarith.core.plans import Plan
from langarith.experiments.steered_job import SteeredJob
from langarith.model.generation import prepare_tokenizer
from langarith.model.lm_head import project
from langarith.model.placement import input_device
from langarith.model.sites import decoder_layers
from langarith.model.steering import steer


@torch.inference_mode()
def last_position_states(
    model, tokenizer, prompts: Sequence[str], plans: Sequence[Plan] | None = None
) -> torch.Tensor:
    """``[prompts, layers, d]``: every decoder layer's output at each prompt's last token,
    with row ``i`` steered by ``plans[i]`` (left padding, so the last position is real)."""
    prepare_tokenizer(tokenizer)
    layers = decoder_layers(model)
    captured: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        states = output[0] if isinstance(output, tuple) else output
        captured.append(states[:, -1, :].detach().float())

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
        enc = enc.to(input_device(model))
        with steer(model, list(plans) if plans is not None else [[]]):
            model.base_model(**enc, use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(captured, dim=1)


@torch.inference_mode()
def top_tokens(model, states: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` probabilities and token ids per (prompt, layer) of ``[prompts, layers, d]``."""
    param = next(model.parameters())
    values, indices = [], []
    for layer in range(states.shape[1]):  # one layer at a time: [prompts, vocabulary] logits
        logits = project(model, states[:, layer].to(param.dtype)).float()
        top = torch.topk(torch.softmax(logits, dim=-1), k, dim=-1)
        values.append(top.values)
        indices.append(top.indices)
    return torch.stack(values, dim=1), torch.stack(indices, dim=1)


class TokenLanguages:
    """lid.176 label of single decoded tokens, cached per token id."""

    def __init__(self, tokenizer, identify: Callable[[list[str]], list[str]]):
        self.tokenizer = tokenizer
        self.identify = identify
        self.cache: dict[int, str] = {}

    def __call__(self, ids: Sequence[int]) -> list[str]:
        todo = sorted({int(i) for i in ids} - set(self.cache))
        if todo:
            texts = [self.tokenizer.decode([i], skip_special_tokens=True) for i in todo]
            for i, lang in zip(todo, self.identify(texts)):
                self.cache[i] = lang
        return [self.cache[int(i)] for i in ids]


def language_mass(probs: Sequence[float], langs: Sequence[str], lang: str) -> float:
    """Probability mass of the tokens labelled ``lang``."""
    return float(sum(p for p, code in zip(probs, langs) if code == lang))


LENS_SCHEMA = {
    "source_lang": pl.String,
    "target_lang": pl.String,
    "question_idx": pl.Int32,
    "steered": pl.Boolean,
    "layer": pl.Int32,
    "target_mass": pl.Float64,
    "english_mass": pl.Float64,
    "top_tokens": pl.List(pl.String),
    "top_probs": pl.List(pl.Float64),
    "top_langs": pl.List(pl.String),
}


def lens_rows(
    model,
    tokenizer,
    rows: Sequence[dict],
    plans: Sequence[Plan],
    identify: Callable[[list[str]], list[str]],
    top_k: int = 5,
    batch_size: int = 16,
) -> pl.DataFrame:
    """One output row per (input row, layer). ``rows`` hold ``prompt, source_lang, target_lang,
    question_idx, steered``; ``plans[i]`` steers row ``i`` (``[]`` = unsteered)."""
    languages = TokenLanguages(tokenizer, identify)
    # an unsteered prompt reads the same whatever the target: compute it once
    keys = [(r["prompt"], -1) if not plan else (r["prompt"], i) for i, (r, plan) in
            enumerate(zip(rows, plans))]  # fmt: skip
    unique = list(dict.fromkeys(keys))
    first = {key: keys.index(key) for key in unique}
    top: dict[tuple, tuple[list, list]] = {}
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        states = last_position_states(
            model, tokenizer, [k[0] for k in chunk], [plans[first[k]] for k in chunk]
        )
        probs, ids = top_tokens(model, states, top_k)
        for j, key in enumerate(chunk):
            top[key] = (probs[j].tolist(), ids[j].tolist())
    out: dict[str, list] = {key: [] for key in LENS_SCHEMA}
    for row, key in zip(rows, keys):
        probs_by_layer, ids_by_layer = top[key]
        for layer, (p, tok) in enumerate(zip(probs_by_layer, ids_by_layer)):
            langs = languages(tok)
            out["source_lang"].append(row["source_lang"])
            out["target_lang"].append(row["target_lang"])
            out["question_idx"].append(row["question_idx"])
            out["steered"].append(bool(row["steered"]))
            out["layer"].append(layer)
            out["target_mass"].append(language_mass(p, langs, row["target_lang"]))
            out["english_mass"].append(language_mass(p, langs, "en"))
            out["top_tokens"].append([tokenizer.decode([t]) for t in tok])
            out["top_probs"].append(p)
            out["top_langs"].append(langs)
    return pl.DataFrame(out, schema=LENS_SCHEMA)


def run_logit_lens_job(
    model_dir: str,
    model_options: dict,
    questions: str,
    job: SteeredJob,
    sources: Sequence[str],
    targets: Sequence[str],
    top_k: int,
    batch_size: int,
    langid_model: str | None,
    output: str,
) -> pl.DataFrame:
    """The ``logit_lens`` job: every (source prompt, target) steered and unsteered; ``job`` is
    read before the model loads, with the selection always (``always_read=True``) and, for a
    calibrated condition, the α of every target."""
    from langarith.experiments.forcing import requests
    from langarith.io.atomic import write_parquet
    from langarith.io.langid import LanguageIdentifier
    from langarith.io.prompts import read_questions
    from langarith.model.loading import load_configured_model

    reqs = requests(read_questions(questions), sources, targets)
    loaded = load_configured_model(model_dir, model_options)
    identifier = LanguageIdentifier(langid_model)

    def identify(texts: list[str]) -> list[str]:
        return [p.lang for p in identifier.predict(texts)]

    rows, plans = [], []
    for req in reqs:
        for steered in (False, True):
            rows.append(
                {
                    "prompt": req.prompt,
                    "source_lang": req.source,
                    "target_lang": req.target,
                    "question_idx": req.question_idx,
                    "steered": steered,
                }
            )
            plans.append(job.plan(req.source, req.target) if steered else [])
    frame = lens_rows(loaded.model, loaded.tokenizer, rows, plans, identify, top_k, batch_size)
    write_parquet(frame, output)
    return frame
