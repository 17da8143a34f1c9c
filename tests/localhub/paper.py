"""``config/paper.yaml`` shrunk to what the local hub holds and two CPU cores run in minutes: the
``--config`` overrides of the paper run (``test_paper_run``), sizes only.

The paper's four models, corpus, task datasets, conditions and settings stay as the file has
them; the overrides cut the languages (to English and Chinese: two scripts, one corpus cut at
the character budget, one used whole, as Tibetan and Maltese are in the paper), the token
budget, the shards, the generation lengths, the items, the prompts and the lists of ratios,
conditions and grid points a run goes through, and set every model to ``bfloat16`` (the
paper's Aya models are float16, which a CPU runs poorly). One override is not a size:
``aya-expanse-32b`` is pinned to the ``v1`` tag of its repository (an older commit than
``main``), so that the run shows a pinned revision reaching provenance.
"""

from __future__ import annotations

import copy
import json

import yaml

from localhub import repos

PAPER_YAML = repos.repo_text.REPO / "config" / "paper.yaml"
PAPER_MODELS = {
    "llama-3.1-8b": repos.LLAMA,
    "mistral-nemo-12b": repos.MISTRAL,
    "aya-expanse-8b": repos.AYA,
    "aya-expanse-32b": repos.AYA_32B,
}
PINNED_MODEL = "aya-expanse-32b"
LANGUAGES = ["en", "zh"]
RECORDING = {"chunk_tokens": 32, "batch_size": 2, "max_tokens": 128, "threads": 1, "shards": 2}
GENERATION = {"max_new_tokens": 3}


def _task(langs: list[str]) -> dict:
    return {"langs": langs, "max_items": 2, "selections": ["lape-1"], "generation": GENERATION}


SHRINK: dict = {
    "languages": LANGUAGES,
    "corpus": {"max_chars": 600},  # en stops at it, zh (390 characters) is used whole
    "models": {
        name: {
            "dtype": "bfloat16",
            **({"source": {"revision": "v1"}} if name == PINNED_MODEL else {}),
        }
        for name in PAPER_MODELS
    },
    "recording": RECORDING,
    "forcing": {
        "selections": ["lape-1"],
        "conditions": ["baseline", "deactivate-activate", "deactivate-replace"],
        "sources": ["en"],
        "generation": GENERATION,
    },
    "analysis": {"logit_lens": {"sources": ["en"], "targets": ["zh"]}},
    "quality": {
        "calibration": {
            "selections": ["lape-1"],
            "grid": [1.0],
            "sources": ["en"],
            "max_new_tokens": 2,
        }
    },
    "tasks": {
        # test languages need no neurons (no condition acts on the source): German too
        "translation": _task(["de", "zh"]),  # English -> X
        "qa": _task(["de", "en"]),
        "reading": _task(["de", "en"]),
        "nli": _task(["de", "en"]),
    },
    "fallback": {
        "selections": ["lape-1"],
        "order": ["en", "zh"],
        "max_prompts": 2,
        "generation": GENERATION,
    },
}


def config_args(overrides: dict = SHRINK) -> list[str]:
    """``overrides`` as ``--config`` arguments, one per top-level key (JSON is YAML)."""
    return [f"{key}={json.dumps(value)}" for key, value in overrides.items()]


def shrunk_config(overrides: dict = SHRINK) -> dict:
    """The paper config with ``overrides`` merged in as Snakemake merges ``--config``, typed."""
    from snakemake.utils import update_config

    config = yaml.safe_load(PAPER_YAML.read_text(encoding="utf-8"))
    update_config(config, copy.deepcopy(overrides))
    return config
