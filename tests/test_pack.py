"""Steering packs: export -> load gives the same plans as the pipeline's own files, bit for bit,
and the files are readable with safetensors + json alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO, SELECTION_LANGS, load_tiny

from langarith.core.conditions import build_plan, parse_condition
from langarith.io.activations import ActivationStats, read_tables
from langarith.io.pack import FORMAT, check_sites, export_pack, load_pack
from langarith.io.selection import read_selection
from langarith.model.generation import generate
from langarith.model.loading import prepare_model
from langarith.model.sites import find_sites
from langarith.model.steering import steer

LANGS = SELECTION_LANGS
LAYERS, WIDTH = 3, 48  # the tiny models of conftest
CONDITIONS = {
    "activate": [{"op": "add", "lang": "target", "value": "mean", "strength": 1.0}],
    "deactivate-activate": [
        {"op": "set", "lang": "source", "value": 0.0},
        {"op": "add", "lang": "target", "value": "mean", "strength": 1.0},
    ],
    "prob": [{"op": "add", "lang": "target", "value": "prob", "strength": 0.5}],
    "replace": [{"op": "replace", "lang": "target", "value": "mean"}],
    "diffmean": [{"op": "diffmean", "lang": "target", "strength": 2.0}],
    "scale-late": [{"op": "scale", "lang": "target", "strength": 3.0, "layers": [1, 2]}],
    "fixed": [{"op": "set", "lang": "zh", "value": -1.5}],
    "residual": [{"op": "diffmean", "site": "residual", "lang": "target", "strength": 4.0}],
    "residual-source-normalized": [
        {
            "op": "diffmean",
            "site": "residual",
            "reference": "source",
            "normalize": True,
            "strength": 0.5,
            "layers": [1, 1],
        },
    ],  # fmt: skip
    "deactivate-residual": [
        {"op": "set", "lang": "source", "value": 0.0},
        {"op": "diffmean", "site": "residual", "lang": "target", "layers": [0, 1]},
    ],
}


def plans_equal(a, b) -> bool:
    return len(a) == len(b) and all(
        x.site == y.site
        and x.op == y.op
        and x.layer == y.layer
        and np.array_equal(x.neurons, y.neurons)
        and np.array_equal(x.values, y.values)  # exact, not approximate
        for x, y in zip(a, b)
    )


def test_pack_plans_equal_pipeline_plans_for_every_condition_and_pair(pipeline_files):
    f = pipeline_files
    neurons = read_selection(f["neurons"], f["summary"])
    tables = read_tables(LANGS, f["stats"])
    packed_neurons, packed_tables = load_pack(f["pack"])
    assert packed_neurons.languages == tuple(LANGS)
    for lang in LANGS:
        for layer in range(LAYERS):
            assert np.array_equal(packed_neurons.masks[lang][layer], neurons.masks[lang][layer])
    checked = 0
    for name, raw in CONDITIONS.items():
        steps = parse_condition(name, raw)
        for source in LANGS:
            for target in LANGS:
                expected = build_plan(steps, source, target, neurons, tables)
                got = build_plan(steps, source, target, packed_neurons, packed_tables)
                assert plans_equal(got, expected), (name, source, target)
                checked += len(expected)
    assert checked > 20
    assert all(neurons.count(lang) > 0 for lang in LANGS)
    residual = build_plan(
        parse_condition("r", CONDITIONS["residual"]), "en", "de", None, packed_tables
    )
    assert [(op.site, op.layer, len(op.neurons)) for op in residual] == [
        ("residual", layer, 32) for layer in range(LAYERS)
    ]


def test_pack_files_stand_alone(pipeline_files):
    from safetensors.numpy import load_file

    f = pipeline_files
    meta = json.loads((f["pack"] / "pack.json").read_text())
    assert meta["format"] == FORMAT and meta["model"] == "tiny"
    assert meta["languages"] == LANGS and (meta["n_layers"], meta["width"]) == (LAYERS, WIDTH)
    assert meta["lape"]["top_rate"] == 0.1
    arrays = load_file(str(f["pack"] / "neurons.safetensors"))
    summary = json.loads(f["summary"].read_text())
    # the union of the selected neurons, with membership as LAPE assigned it
    assert arrays["member"].shape == (len(LANGS), len(arrays["layer"]))
    for k, lang in enumerate(LANGS):
        assert int(arrays["member"][k].sum()) == summary["neurons_per_language"][lang]
    # μ of language k at neuron u, recomputed by hand from the statistics file
    stats = ActivationStats.read(f["stats"][2])
    u = len(arrays["layer"]) // 2
    layer, neuron = int(arrays["layer"][u]), int(arrays["neuron"][u])
    assert arrays["act_mean"][2, u] == stats.act_sum[layer, neuron] / stats.n_tokens
    assert arrays["p_active"][2, u] == stats.n_active[layer, neuron] / stats.n_tokens
    assert arrays["act_mean"].dtype == np.float64


def test_a_calibrated_selection_s_pack_records_the_chosen_alpha(pipeline_files, tmp_path):
    f = pipeline_files
    calibration = {
        "condition": "deactivate-activate",
        "grid": [0.5, 1.0, 2.0],
        "ngram": 3,
        "max_repetition": 0.5,
        "targets": {
            "de": {"alpha": 2.0, "success_and_fluent": 0.75, "sweep": []},
            "zh": {"alpha": 0.5, "success_and_fluent": 0.25, "sweep": []},
        },
    }
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(calibration))
    out = tmp_path / "pack"
    export_pack(f["neurons"], f["summary"], f["stats"], LANGS, out, {"model": "tiny"}, path)
    meta = json.loads((out / "pack.json").read_text())
    assert meta["calibration"] == {
        "condition": "deactivate-activate",
        "grid": [0.5, 1.0, 2.0],
        "ngram": 3,
        "max_repetition": 0.5,
        "alpha": {"de": 2.0, "zh": 0.5},
        "success_and_fluent": {"de": 0.75, "zh": 0.25},
    }
    assert "calibration" not in f["meta"]  # an uncalibrated selection's pack has none


def test_a_loaded_pack_steers_a_model_like_the_pipeline(pipeline_files, tiny_llama_dir):
    f = pipeline_files
    model, tokenizer = load_tiny(tiny_llama_dir)
    check_sites(f["pack"], find_sites(model))
    steps = parse_condition("deactivate-activate", CONDITIONS["deactivate-activate"])
    pipeline_plan = build_plan(
        steps,
        "en",
        "fr",
        read_selection(f["neurons"], f["summary"]),
        read_tables(LANGS, f["stats"]),
    )
    pack_plan = build_plan(steps, "en", "fr", *load_pack(f["pack"]))
    ids = tokenizer(["The weather is nice today."], return_tensors="pt")
    with torch.no_grad():
        plain = model(**ids).logits
        with steer(model, pipeline_plan):
            expected = model(**ids).logits
        with steer(model, pack_plan):
            got = model(**ids).logits
    assert torch.equal(got, expected)
    assert not torch.allclose(got, plain)


def test_check_sites_rejects_another_shape(pipeline_files, tiny_llama_dir, tmp_path):
    meta = json.loads((pipeline_files["pack"] / "pack.json").read_text())
    meta["width"] = 64
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pack.json").write_text(json.dumps(meta))
    model, _ = load_tiny(tiny_llama_dir)
    with pytest.raises(ValueError, match="3 × 48"):
        check_sites(bad, find_sites(model))
    meta["format"] = "something-else"
    (bad / "pack.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not a steering pack"):
        load_pack(bad)


def readme_package_example() -> str:
    """The Python block of the README's "The package" section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The package") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("\n```", start)]


def test_the_readme_package_example_runs_and_steers_like_the_pipeline(
    pipeline_files, tiny_llama_dir, tmp_path
):
    prepared = tmp_path / "model"
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, prepared)
    code = readme_package_example()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 5 and sum(line.startswith("import ") for line in lines) == 1
    code = code.replace("resources/models/gemma3-270m", str(prepared))
    code = code.replace("results/packs/gemma3-270m/lape-5", str(pipeline_files["pack"]))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    # the same steering, built from the pipeline's own files without the public API
    model, tokenizer = load_tiny(tiny_llama_dir)
    steps = parse_condition("da", CONDITIONS["deactivate-activate"])
    plan = build_plan(
        steps,
        "en",
        "de",
        read_selection(pipeline_files["neurons"], pipeline_files["summary"]),
        read_tables(LANGS, pipeline_files["stats"]),
    )
    prompt = "Q: What is a good life? \nA:"
    expected = generate(model, tokenizer, [prompt], [plan], max_new_tokens=16, progress=False)
    unsteered = generate(model, tokenizer, [prompt], None, max_new_tokens=16, progress=False)
    assert namespace["outputs"] == expected
    assert expected != unsteered  # the plan really steers
