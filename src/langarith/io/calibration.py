"""The calibration file (``results/calibration/<model>/<selection>.json``): the α chosen per
target language, read once; and the layer a layer sweep chose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def _load(calibration: str | Path | Mapping) -> Mapping:
    if isinstance(calibration, Mapping):
        return calibration
    from langarith.io.readers import read_json_object

    return read_json_object(calibration)


def calibrated_alpha(calibration: str | Path | Mapping, target: str) -> float:
    """The α chosen for ``target`` in a calibration JSON file (or its loaded dict)."""
    return read_alphas(calibration, [target])[target]


def read_alphas(calibration: str | Path | Mapping, targets: Sequence[str]) -> dict[str, float]:
    """``{target: α}`` for every one of ``targets`` from a calibration (file or loaded dict),
    read once."""
    chosen = _load(calibration).get("targets", {})
    for target in targets:
        if target not in chosen:
            where = "the calibration" if isinstance(calibration, Mapping) else calibration
            raise ValueError(
                f"{where} has no α for target {target!r} (calibrated: {' '.join(chosen) or 'none'})"
            )
    return {target: float(chosen[target]["alpha"]) for target in targets}


def read_best_layer(layer_sweep: str | Path) -> int:
    """The layer a layer sweep chose (``results/layer_sweep/<model>/<selection>/<condition>.json``,
    :mod:`langarith.experiments.layer_sweep`)."""
    data = _load(layer_sweep)
    layer = data.get("best_layer")
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ValueError(f"{layer_sweep}: no best_layer (an integer) in the layer sweep")
    return layer
