"""Models larger than one device: accelerate ``device_map`` loading and where inputs must go.

With a ``device_map`` (``"auto"``, or a dict from module names to ``"cuda:0"``/``0``, ``"cpu"``
or ``"disk"``), accelerate splits the model: layers on other devices, or offloaded to CPU RAM or
to disk, are wrapped with hooks that move weights and inputs to the layer's execution device just
in time. The neuron-site forward hooks of ``langarith.record`` and ``langarith.steer`` are plain
``torch`` hooks on the activation modules and work unchanged under these wrappers; the only
thing a caller must know is where to put the input ids (``input_device``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn


def _execution_device(module: nn.Module) -> torch.device | None:
    """The device accelerate runs ``module`` on, if accelerate hooked it."""
    hook = getattr(module, "_hf_hook", None)
    for candidate in (hook, *getattr(hook, "hooks", ())):
        device = getattr(candidate, "execution_device", None)
        if device is not None:
            return torch.device(device)
    return None


def input_device(model: nn.Module) -> torch.device:
    """The device input ids must be on: the input embedding's execution device.

    For an accelerate-dispatched model that is the device the embedding runs on (its weights
    may live on ``meta`` when offloaded); otherwise the device of its weights, else of the
    model's first materialised parameter, else the CPU.
    """
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embed is not None:
        device = _execution_device(embed)
        if device is not None:
            return device
        for param in embed.parameters():
            if param.device.type != "meta":
                return param.device
    for param in model.parameters():
        if param.device.type != "meta":
            return param.device
    return torch.device("cpu")


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_with_device_map(
    model_dir: str | Path,
    device_map: str | dict,
    offload_folder: str | Path | None = None,
    dtype: str = "float32",
    max_memory: dict | None = None,
    trust_remote_code: bool = False,
):
    """Load a prepared model directory split by accelerate; returns ``models.LoadedModel``.

    ``device_map`` as in ``transformers``' ``from_pretrained`` (``"auto"`` or an explicit dict);
    modules mapped to ``"disk"`` need ``offload_folder``. The model is in eval mode without
    gradients; do not call ``.to()`` on it (accelerate owns its placement).
    """
    import transformers

    from langarith.models import MANIFEST, LoadedModel

    mapped = device_map.values() if isinstance(device_map, dict) else ()
    if "disk" in {str(target) for target in mapped} and offload_folder is None:
        raise ValueError("a device_map that offloads modules to 'disk' needs an offload_folder")
    model_dir = Path(model_dir)
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{str(model_dir)!r} is not a prepared model directory (no {MANIFEST})")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    manifest = json.loads(manifest_path.read_text())
    path = (model_dir / manifest["path"]).resolve()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path,
        dtype=_DTYPES[dtype],
        device_map=device_map,
        offload_folder=str(offload_folder) if offload_folder is not None else None,
        max_memory=max_memory,
        trust_remote_code=trust_remote_code,
        use_safetensors=True,
    )
    model.eval()
    model.requires_grad_(False)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        path, trust_remote_code=trust_remote_code
    )
    return LoadedModel(model=model, tokenizer=tokenizer, manifest=manifest)
