"""The manifest of a prepared model directory (``langarith_model.json``, written by
``prepare_model``): its source, where its weights are, and what identifies them."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "langarith_model.json"


def write_manifest(model_dir: str | Path, manifest: dict) -> None:
    (Path(model_dir) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(model_dir: str | Path) -> dict:
    """The manifest of ``model_dir``; ``ValueError`` naming the directory if it has none."""
    from langarith.io.readers import read_json_object

    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{str(model_dir)!r} is not a prepared model directory (no {MANIFEST})")
    return read_json_object(path)
