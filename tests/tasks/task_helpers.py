"""Small helpers shared by the task-layer tests (a uniquely named module, not a conftest)."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write ``rows`` as JSON lines and return ``path``."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def assert_unique_ids(items) -> None:
    ids = [item.item_id for item in items]
    assert len(set(ids)) == len(ids)
