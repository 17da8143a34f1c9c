"""Steering packs: one neuron selection and the statistics its interventions need, in two
self-describing files, loadable without any pipeline output.

A pack is a directory with

* ``neurons.safetensors``: over the union U of the selected neurons (sorted by layer, neuron),
  ``layer`` int32 [U], ``neuron`` int32 [U], ``member`` bool [K, U] (neuron u belongs to
  language k), ``act_mean`` float64 [K, U] and ``p_active`` float64 [K, U]: the mean activation
  μ and the activation probability p of every language k at every neuron of U (all languages,
  not only the members, so that ``diffmean`` works);
* when the statistics hold the residual stream (:mod:`langarith.io.activations`),
  ``residual_mean`` float64 [K, L, H] and ``residual_rms`` float64 [K, L]: each language's mean
  residual stream and its root mean square norm after every decoder layer, from which the
  residual DiffMean directions (``site: residual`` steps) are built;
* ``pack.json``: the format tag, the model (config name and source), the selection and its
  LAPE parameters, the language order (the K axis), the layer count and width, the neuron
  site, counts per language and token counts, and, when the selection was calibrated
  (``quality.calibration``), ``calibration``: the chosen α per target language.

``load_pack(path)`` returns the ``(NeuronSet, LanguageTables)`` pair that
:func:`langarith.core.conditions.build_plan` takes, so::

    neurons, tables = load_pack("results/packs/gemma3-270m/lape-5")
    steps = parse_condition("activate", [{"op": "add", "lang": "target", "value": "mean"}])
    with steer(model, build_plan(steps, "en", "fr", neurons, tables)):
        model.generate(...)

The tables are dense ``[layers, width]`` arrays holding NaN outside U (a plan only ever reads
them at selected neurons). Values are stored in float64, so plans built from a pack equal those
built from the pipeline's files bit for bit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from langarith.core.conditions import LanguageTables
from langarith.core.selection import NeuronSet
from langarith.io.activations import read_tables
from langarith.io.readers import check_safetensors, read_json_object
from langarith.io.selection import read_selection

FORMAT = "langarith-steering-pack/1"
TENSORS = "neurons.safetensors"
META = "pack.json"
SITE = "output of each decoder layer's MLP activation module (mlp.act_fn for gated MLPs)"
RESIDUAL_SITE = "output of each decoder layer (the residual stream, before the final norm)"


def pack_arrays(neurons: NeuronSet, tables: LanguageTables) -> dict[str, np.ndarray]:
    """The tensors of a pack for ``neurons`` with values from ``tables``."""
    languages = list(neurons.languages)
    pairs = sorted(
        {
            (layer, int(j))
            for lang in languages
            for layer, idx in enumerate(neurons.masks[lang])
            for j in idx
        }
    )
    layer = np.array([p[0] for p in pairs], dtype=np.int32)
    neuron = np.array([p[1] for p in pairs], dtype=np.int32)
    member = np.zeros((len(languages), len(pairs)), dtype=bool)
    position = {p: u for u, p in enumerate(pairs)}
    for k, lang in enumerate(languages):
        for li, idx in enumerate(neurons.masks[lang]):
            for j in idx:
                member[k, position[(li, int(j))]] = True
    act_mean = np.stack([np.asarray(tables.act_mean[lang])[layer, neuron] for lang in languages])
    p_active = np.stack([np.asarray(tables.p_active[lang])[layer, neuron] for lang in languages])
    arrays = {
        "layer": layer,
        "neuron": neuron,
        "member": member,
        "act_mean": act_mean.astype(np.float64).reshape(len(languages), len(pairs)),
        "p_active": p_active.astype(np.float64).reshape(len(languages), len(pairs)),
    }
    if tables.residual_mean is not None and tables.residual_rms is not None:
        arrays["residual_mean"] = np.stack(
            [np.asarray(tables.residual_mean[lang], dtype=np.float64) for lang in languages]
        )
        arrays["residual_rms"] = np.stack(
            [np.asarray(tables.residual_rms[lang], dtype=np.float64) for lang in languages]
        )
    return arrays


def write_pack(
    neurons: NeuronSet,
    tables: LanguageTables,
    out_dir: str | Path,
    metadata: Mapping | None = None,
) -> dict:
    """Write a pack of ``neurons`` (values from ``tables``) to ``out_dir``; return its JSON."""
    from safetensors.numpy import save_file

    from langarith.io.atomic import atomic_path, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = pack_arrays(neurons, tables)
    meta = {
        "format": FORMAT,
        **dict(metadata or {}),
        "languages": list(neurons.languages),
        "n_layers": neurons.n_layers,
        "width": neurons.width,
        "site": SITE,
        "n_union": int(len(arrays["layer"])),
        "neurons_per_language": {lang: neurons.count(lang) for lang in neurons.languages},
        "tensors": {
            "layer": "int32 [U]",
            "neuron": "int32 [U]",
            "member": "bool [K, U]",
            "act_mean": "float64 [K, U]",
            "p_active": "float64 [K, U]",
        },
    }
    if "residual_mean" in arrays:
        meta["residual_site"] = RESIDUAL_SITE
        meta["hidden_size"] = int(arrays["residual_mean"].shape[2])
        meta["tensors"]["residual_mean"] = "float64 [K, L, H]"
        meta["tensors"]["residual_rms"] = "float64 [K, L]"
    with atomic_path(out / TENSORS) as tmp:
        save_file(arrays, str(tmp), metadata={"format": FORMAT})
    write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", out / META)
    return meta


def export_pack(
    neurons_parquet: str | Path,
    summary_json: str | Path,
    activation_files: Sequence[str | Path],
    languages: Sequence[str],
    out_dir: str | Path,
    metadata: Mapping | None = None,
    calibration_json: str | Path | None = None,
) -> dict:
    """The ``export_pack`` job: a pack from the pipeline's neuron selection and statistics,
    with the calibrated strength per target language when the selection was calibrated."""
    neurons = read_selection(neurons_parquet, summary_json)
    tables = read_tables(languages, activation_files)
    summary = read_json_object(summary_json)
    selection = {
        key: summary[key]
        for key in (
            "top_rate",
            "filter_rate",
            "activation_bar_ratio",
            "tau_filter",
            "tau_assign",
            "n_selected",
        )
        if key in summary
    }
    meta = {**dict(metadata or {}), "lape": selection}
    if "n_tokens" in summary:
        meta["n_tokens"] = summary["n_tokens"]
    if calibration_json is not None:
        meta["calibration"] = pack_calibration(calibration_json)
    return write_pack(neurons, tables, out_dir, meta)


def pack_calibration(calibration_json: str | Path) -> dict:
    """What a pack keeps of a calibration: the condition whose additive strength was swept, the
    grid, the fluency settings and the chosen α (with its scores) per target language."""
    data = read_json_object(calibration_json)
    return {
        "condition": data["condition"],
        "grid": data["grid"],
        "ngram": data["ngram"],
        "max_repetition": data["max_repetition"],
        "alpha": {target: info["alpha"] for target, info in data["targets"].items()},
        "success_and_fluent": {
            target: info["success_and_fluent"] for target, info in data["targets"].items()
        },
    }


def read_pack_meta(path: str | Path) -> dict:
    meta = read_json_object(Path(path) / META)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a steering pack of format {FORMAT} ({meta.get('format')!r})")
    return meta


def load_pack(path: str | Path) -> tuple[NeuronSet, LanguageTables]:
    """The neuron set and the per-language tables of the pack in directory ``path``."""
    from safetensors.numpy import load_file

    meta = read_pack_meta(path)
    check_safetensors(Path(path) / TENSORS)
    arrays = load_file(str(Path(path) / TENSORS))
    languages = tuple(meta["languages"])
    n_layers, width = int(meta["n_layers"]), int(meta["width"])
    layer = arrays["layer"].astype(np.int64)
    neuron = arrays["neuron"].astype(np.int64)
    member = arrays["member"].astype(bool)
    if member.shape != (len(languages), len(layer)):
        raise ValueError(f"{path}: member has shape {member.shape}, expected ({len(languages)}, U)")
    masks: dict[str, list[np.ndarray]] = {}
    act_mean: dict[str, np.ndarray] = {}
    p_active: dict[str, np.ndarray] = {}
    for k, lang in enumerate(languages):
        keep = member[k]
        masks[lang] = [
            np.sort(neuron[keep & (layer == li)]).astype(np.int64) for li in range(n_layers)
        ]
        for table, name in ((act_mean, "act_mean"), (p_active, "p_active")):
            dense = np.full((n_layers, width), np.nan)
            dense[layer, neuron] = arrays[name][k]
            table[lang] = dense
    neurons = NeuronSet(languages=languages, n_layers=n_layers, width=width, masks=masks)
    residual_mean = residual_rms = None
    if "residual_mean" in arrays:
        means, rms = arrays["residual_mean"], arrays.get("residual_rms")
        if means.ndim != 3 or means.shape[:2] != (len(languages), n_layers) or rms is None:
            raise ValueError(
                f"{path}: residual_mean has shape {means.shape}, expected "
                f"({len(languages)}, {n_layers}, H) beside residual_rms"
            )
        if rms.shape != (len(languages), n_layers):
            raise ValueError(
                f"{path}: residual_rms has shape {rms.shape}, expected "
                f"({len(languages)}, {n_layers})"
            )
        residual_mean = {lang: means[k] for k, lang in enumerate(languages)}
        residual_rms = {lang: rms[k] for k, lang in enumerate(languages)}
    tables = LanguageTables(act_mean, p_active, residual_mean, residual_rms)
    return neurons, tables


def check_sites(path: str | Path, sites) -> None:
    """``ValueError`` unless a model's neuron ``sites`` (:func:`langarith.model.sites.find_sites`)
    have the pack's layer count and width."""
    meta = read_pack_meta(path)
    if (sites.n_layers, sites.width) != (meta["n_layers"], meta["width"]):
        raise ValueError(
            f"{path}: pack is for {meta['n_layers']} layers × {meta['width']} neurons, the model "
            f"has {sites.n_layers} × {sites.width}"
        )
