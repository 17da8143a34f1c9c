"""Two runs of the tiny workflow in two working directories give the same bytes.

Compared: activation statistics, neuron selections (.parquet, .pt, .json), generations,
language ID, scores and the provenance record. Parquet files are compared by content and by
bytes. The helpers here (a small config, running Snakemake, the reference run) are shared
with ``test_crash_recovery.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from conftest import REPO, repo_corpus, snakemake_argv, write_config

MODEL = "tiny"
# What the crash and determinism tests build: selections, generations, scores, provenance.
TARGETS = (
    f"results/neurons/{MODEL}/lape-10.parquet",
    f"results/scores/{MODEL}/forcing.parquet",
    f"results/provenance/{MODEL}.json",
)
OPTIONAL_SECTIONS = ("tasks", "fallback", "analysis", "quality")


def small_config(model_dir: Path) -> dict:
    """The tiny test config (.test/), cut to 2 languages, 1 selection, 2 conditions."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    for section in OPTIONAL_SECTIONS:
        config.pop(section, None)
    config["languages"] = ["en", "de"]
    config["corpus"]["path"] = str(repo_corpus())
    config["models"][MODEL]["source"]["path"] = str(model_dir)
    config["models"][MODEL]["gpus"] = 0  # CPU jobs: two run side by side on the two cores
    config["selections"] = {"lape-10": config["selections"]["lape-10"]}
    config["conditions"] = {
        name: config["conditions"][name] for name in ("baseline", "deactivate-activate")
    }
    config["forcing"].update(
        selections=["lape-10"], conditions=["baseline", "deactivate-activate"], sources=["en", "de"]
    )
    return config


def snakemake_command(workdir: Path, config: dict, *args: str) -> list[str]:
    return snakemake_argv(workdir, write_config(workdir, config), *args, targets=TARGETS)


def run_snakemake(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    cmd = snakemake_command(workdir, config, *args)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def output_files(workdir: Path) -> dict[str, Path]:
    """Every result file under its final name (hidden temporary files left out)."""
    root = workdir / "results"
    return {
        str(path.relative_to(workdir)): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.parts)
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pt_content(path: Path):
    import torch

    masks = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
    return [[tensor.tolist() for tensor in per_layer] for per_layer in masks]


def compare_outputs(a: Path, b: Path) -> list[str]:
    """Files that differ between two run directories; '.pt' archives whose only difference is
    the name of the temporary file torch.save wrote to are reported separately (see below)."""
    files_a, files_b = output_files(a), output_files(b)
    assert sorted(files_a) == sorted(files_b)
    differ = []
    for name, path in files_a.items():
        other = files_b[name]
        if name.endswith(".parquet"):
            frame_a, frame_b = pl.read_parquet(path), pl.read_parquet(other)
            assert frame_a.equals(frame_b), f"{name}: contents differ"
        if name.endswith(".pt"):
            assert pt_content(path) == pt_content(other), f"{name}: masks differ"
        if path.read_bytes() != other.read_bytes():
            differ.append(name)
    return differ


def assert_no_differences(differ: list[str]) -> None:
    """Every output is byte-identical between two identical runs (masks included)."""
    assert differ == [], f"outputs differ between identical runs: {differ}"


_REFERENCE: dict[str, Path] = {}


def reference_run(tmp_path_factory, model_dir: Path) -> Path:
    """An uninterrupted run of ``small_config`` (once per test session)."""
    key = str(model_dir)
    if key not in _REFERENCE:
        workdir = tmp_path_factory.mktemp("reference")
        run_snakemake(workdir, small_config(model_dir))
        _REFERENCE[key] = workdir
    return _REFERENCE[key]


@pytest.mark.slow
def test_two_runs_give_identical_bytes(tmp_path_factory, tiny_llama_dir):
    first = reference_run(tmp_path_factory, tiny_llama_dir)
    second = tmp_path_factory.mktemp("second")
    run_snakemake(second, small_config(tiny_llama_dir))
    names = set(output_files(first))
    assert {
        f"results/neurons/{MODEL}/lape-10.parquet",
        f"results/neurons/{MODEL}/lape-10.pt",
        f"results/neurons/{MODEL}/lape-10.json",
        f"results/generations/{MODEL}/none/forcing/baseline.parquet",
        f"results/generations/{MODEL}/lape-10/forcing/deactivate-activate.parquet",
        f"results/scores/{MODEL}/forcing.parquet",
        f"results/provenance/{MODEL}.json",
    } <= names
    assert_no_differences(compare_outputs(first, second))


@pytest.mark.slow
def test_provenance_names_versions_model_and_config(tmp_path_factory, tiny_llama_dir):
    workdir = reference_run(tmp_path_factory, tiny_llama_dir)
    record = json.loads((workdir / f"results/provenance/{MODEL}.json").read_text())
    for package in ("torch", "transformers", "snakemake", "langarith"):
        assert record["packages"][package], package
    assert record["python"]["version"] == ".".join(map(str, sys.version_info[:3]))
    model = record["model"]
    assert model["name"] == MODEL
    assert model["source"] == {"kind": "local", "path": str(tiny_llama_dir)}
    manifest = json.loads((workdir / f"resources/models/{MODEL}/langarith_model.json").read_text())
    assert model["manifest"] == manifest
    assert model["files_sha256"]["model.safetensors"] == sha256(
        tiny_llama_dir / "model.safetensors"
    )
    assert model["files_sha256"]["config.json"] == sha256(tiny_llama_dir / "config.json")
    # the hash of the config Snakemake ran with (the schema's defaults filled in), recomputed
    # here from its canonical JSON (sorted keys, no whitespace, UTF-8)
    canonical = json.dumps(
        record["config"], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert record["config_sha256"] == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert record["config"]["languages"] == ["en", "de"]
    assert record["config"]["models"][MODEL]["trust_remote_code"] is False  # a default
    setting = record["config"]["models"][MODEL]["dtype"]
    assert model["dtype"]["setting"] == setting
    assert model["dtype"]["resolved"] in (
        (setting,) if setting != "auto" else ("float32", "bfloat16")
    )


def test_a_hub_cache_file_is_identified_by_its_blob_name(tmp_path):
    from langarith.io.provenance import file_sha256

    blob = tmp_path / "blobs" / ("a" * 64)
    blob.parent.mkdir()
    blob.write_bytes(b"weights")
    link = tmp_path / "snapshots" / "rev" / "model.safetensors"
    link.parent.mkdir(parents=True)
    os.symlink(blob, link)
    assert file_sha256(link) == "a" * 64
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"weights")
    assert file_sha256(plain) == hashlib.sha256(b"weights").hexdigest()
