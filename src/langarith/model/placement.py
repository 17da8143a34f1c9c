"""Models larger than one device: accelerate ``device_map`` placement and where inputs must go.

A model's config may set ``device_map`` (``"auto"``, or a dict from module names to a GPU index
``N``/``"cuda:N"``, ``"cpu"`` or ``"disk"``), ``max_memory`` (device -> size such as
``"70GiB"``, for ``"auto"``) and ``offload_folder`` (where modules mapped to ``"disk"`` may be
written). accelerate then splits the model: layers on other devices, or offloaded to CPU RAM or
to disk, are wrapped with hooks that move weights and inputs to the layer's execution device just
in time. The neuron-site forward hooks of ``langarith.model.recording`` and
``langarith.model.steering`` are plain ``torch`` hooks on the activation modules and work
unchanged under these wrappers; the only thing a caller must know is where to put the input ids
(``input_device``).

``placement`` checks these options and turns them into ``from_pretrained`` keyword arguments;
``langarith.model.loading.load_model`` uses it. Every bad value is a ``ValueError`` whose one-line
message starts with the option's name.
"""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEVICE_MAP_STRATEGIES = ("auto",)
_DEVICE = re.compile(r"^(cpu|disk|mps|cuda|cuda:[0-9]+|[0-9]+)$")
_MEMORY_DEVICE = re.compile(r"^(cpu|disk|mps|cuda:[0-9]+|[0-9]+)$")
# What accelerate's convert_file_size_to_int reads: decimal or binary K/M/G units (lower-case
# "b" means bits).
_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?\s*[KMGkmg][Ii]?[Bb]$")


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


def _device_target(value: Any, key: str) -> int | str:
    """A ``device_map`` value as ``from_pretrained`` takes it: a GPU index or a device name."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DEVICE.match(value):
        return int(value) if value.isdigit() else value
    raise ValueError(
        f"device_map: {value!r} (for {key!r}) is not a device (cpu, disk, mps, cuda, cuda:N or "
        "a GPU index N)"
    )


def check_device_map(device_map: Any) -> str | dict[str, int | str]:
    """``device_map`` as ``from_pretrained`` takes it, or ``ValueError`` naming the key."""
    if isinstance(device_map, str):
        if device_map not in DEVICE_MAP_STRATEGIES:
            raise ValueError(
                f"device_map: {device_map!r} is not one of {', '.join(DEVICE_MAP_STRATEGIES)} "
                "or a dict from module names to devices"
            )
        return device_map
    if not isinstance(device_map, Mapping) or not device_map:
        raise ValueError(
            f"device_map: {device_map!r} is not 'auto' or a non-empty dict from module names "
            "to devices"
        )
    for key in device_map:
        if not isinstance(key, str):
            raise ValueError(f"device_map: the key {key!r} is not a module name (a string)")
    return {key: _device_target(value, key) for key, value in device_map.items()}


def check_max_memory(max_memory: Any) -> dict[int | str, int | str]:
    """``max_memory`` with GPU keys as ints (accelerate's form), or ``ValueError`` naming it."""
    if not isinstance(max_memory, Mapping) or not max_memory:
        raise ValueError(f"max_memory: {max_memory!r} is not a non-empty dict of device -> size")
    out: dict[int | str, int | str] = {}
    for key, size in max_memory.items():
        name = str(key)
        if isinstance(key, bool) or not _MEMORY_DEVICE.match(name):
            raise ValueError(
                f"max_memory: {key!r} is not a device (cpu, disk, mps, cuda:N or a GPU index N)"
            )
        device: int | str = int(name.removeprefix("cuda:")) if name[-1].isdigit() else name
        if isinstance(size, bool) or not (
            (isinstance(size, int) and size >= 0) or (isinstance(size, str) and _SIZE.match(size))
        ):
            raise ValueError(
                f"max_memory.{name}: {size!r} is not a size (bytes, or e.g. '70GiB', '500MB')"
            )
        out[device] = size
    return out


def _covered(name: str, keys: Mapping[str, Any]) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in keys for i in range(len(parts)))


def check_modules(model: nn.Module, device_map: Mapping[str, Any]) -> None:
    """Every key names a module of ``model`` (``""``: the whole model) and every parameter has
    a device. ``model`` may live on the ``meta`` device."""
    modules = {name for name, _ in model.named_modules()}
    unknown = [key for key in device_map if key not in modules]
    if unknown:
        children = ", ".join(name for name, _ in model.named_children())
        raise ValueError(
            f"device_map: {unknown[0]!r} is not a module of {type(model).__name__} "
            f"(its top-level modules: {children})"
        )
    missing = [name for name, _ in model.named_parameters() if not _covered(name, device_map)]
    if missing:
        raise ValueError(
            f"device_map: no device for the parameter {missing[0]!r}"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            + "; map it or a module that contains it"
        )


def _empty_model(path: Path, trust_remote_code: bool) -> nn.Module:
    """The model of the checkpoint at ``path`` without weights (on the ``meta`` device)."""
    import accelerate
    import transformers

    config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    with accelerate.init_empty_weights():
        return transformers.AutoModelForCausalLM.from_config(
            config, trust_remote_code=trust_remote_code
        )


def check_options(
    device_map: Any = None, max_memory: Any = None, offload_folder: Any = None
) -> dict[str, Any]:
    """The placement options as ``from_pretrained`` keyword arguments (``{}`` without a
    ``device_map``), or ``ValueError`` naming the option. Needs no model."""
    if device_map is None:
        for name, value in (("max_memory", max_memory), ("offload_folder", offload_folder)):
            if value is not None:
                raise ValueError(f"{name}: only used with a device_map (device_map is null)")
        return {}
    kwargs: dict[str, Any] = {"device_map": check_device_map(device_map)}
    if max_memory is not None:
        kwargs["max_memory"] = check_max_memory(max_memory)
    if offload_folder is not None:
        if not isinstance(offload_folder, str | Path) or not str(offload_folder):
            raise ValueError(f"offload_folder: {offload_folder!r} is not a directory path")
        kwargs["offload_folder"] = offload_folder
    elif isinstance(kwargs["device_map"], dict) and "disk" in kwargs["device_map"].values():
        raise ValueError("offload_folder: a device_map that offloads modules to 'disk' needs one")
    return kwargs


def placement(
    path: str | Path,
    device_map: Any = None,
    max_memory: Any = None,
    offload_folder: str | Path | None = None,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """``check_options`` for the checkpoint at ``path``; an explicit ``device_map`` is also
    checked against the model's modules, before any weight is read."""
    kwargs = check_options(device_map, max_memory, offload_folder)
    if isinstance(kwargs.get("device_map"), dict):
        check_modules(_empty_model(Path(path), trust_remote_code), kwargs["device_map"])
    return kwargs


def offload_subfolder(offload_folder: str | Path, prefix: str) -> str:
    """A new directory inside ``offload_folder`` for one process, deleted when it exits.

    transformers writes offloaded weights it had to convert under fixed file names; jobs that
    load the same model side by side must not share them.
    """
    parent = Path(offload_folder)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(prefix=f"{prefix}.", dir=parent)
    except OSError as err:
        raise ValueError(
            f"offload_folder: cannot create a folder in {str(parent)!r}: {err}"
        ) from None
    atexit.register(shutil.rmtree, folder, True)
    return folder
