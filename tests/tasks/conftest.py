"""Fixtures of the task-layer tests: the real data subsets (never copied), a datasets cache."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared real subsets of FLORES-200 / XQuAD / Belebele / XNLI, or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared evaluation data is not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def hf_cache(tmp_path_factory) -> str:
    """A private ``datasets`` cache, so hub-kind tests never touch the user's cache."""
    return str(tmp_path_factory.mktemp("hf-datasets-cache"))
