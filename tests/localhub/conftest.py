"""Fixtures of the local-hub tests: the hub (one per session) and clients pointed at it.

``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT``, ``HF_HOME``, ``HF_HUB_OFFLINE``...
once, when imported; the ``hub`` fixture sets the variables (for subprocesses) and the
constants both libraries copied from them (for this process), with an empty private cache and
no token, so no test ever reaches huggingface.co or the user's cache and token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from localhub import repos
from localhub.server import GOOD_TOKEN, OTHER_TOKEN, LocalHub


@pytest.fixture(scope="session")
def local_hub(tmp_path_factory):
    hub = repos.populate(LocalHub().start(), tmp_path_factory.mktemp("localhub"))
    yield hub
    hub.stop()


@dataclass
class HubClient:
    """The local hub as a test's clients see it; ``login``/``offline`` change that."""

    hub: LocalHub
    home: Path
    monkeypatch: pytest.MonkeyPatch

    def login(self, token: str | None = GOOD_TOKEN) -> None:
        """``HF_TOKEN=token`` (``None``: no token)."""
        if token is None:
            self.monkeypatch.delenv("HF_TOKEN", raising=False)
        else:
            self.monkeypatch.setenv("HF_TOKEN", token)

    def wrong_login(self) -> None:
        self.login(OTHER_TOKEN)

    def offline(self) -> None:
        """``HF_HUB_OFFLINE=1``, as set after the libraries were imported."""
        import datasets.config
        import huggingface_hub.constants

        self.monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        self.monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        self.monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        self.monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)


def point_clients_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, home: Path) -> None:
    import datasets.config
    import huggingface_hub.constants as hub_constants
    from huggingface_hub import HfFileSystem

    home.mkdir(parents=True, exist_ok=True)
    env = {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_DATASETS_CACHE": str(home / "datasets"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    unset = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    for key in unset:
        monkeypatch.delenv(key, raising=False)
    patches = {
        hub_constants: {
            "ENDPOINT": endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(home / "hub"),
            "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
            "HF_TOKEN_PATH": str(home / "token"),
            "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
            "HF_HUB_OFFLINE": False,
        },
        datasets.config: {
            "HF_ENDPOINT": endpoint,
            "HUB_DATASETS_URL": endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
            "HF_HUB_OFFLINE": False,
            "HF_DATASETS_OFFLINE": False,
            "HF_CACHE_HOME": str(home),
            "HF_DATASETS_CACHE": home / "datasets",
            "HF_MODULES_CACHE": home / "modules",
            "DOWNLOADED_DATASETS_PATH": home / "datasets" / "downloads",
            "EXTRACTED_DATASETS_PATH": home / "datasets" / "downloads" / "extracted",
        },
    }
    for module, values in patches.items():
        for name, value in values.items():
            assert hasattr(module, name), f"{module.__name__}.{name} is gone: update this fixture"
            monkeypatch.setattr(module, name, value)
    HfFileSystem.clear_instance_cache()  # its listings of an earlier test's hub state


@pytest.fixture
def hub(local_hub, tmp_path, monkeypatch) -> HubClient:
    """Clients (huggingface_hub, datasets) on the local hub, an empty cache, no token."""
    home = tmp_path / "hf-home"
    point_clients_at(monkeypatch, local_hub.url, home)
    local_hub.requests.clear()
    local_hub.fetched.clear()
    yield HubClient(local_hub, home, monkeypatch)
    from huggingface_hub import HfFileSystem

    HfFileSystem.clear_instance_cache()
