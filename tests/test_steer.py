"""Steering changes exactly the chosen neurons, by exactly the intended amounts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import load_tiny

from langarith.core.conditions import LanguageTables, Step, build_plan, parse_condition
from langarith.core.plans import NeuronOp, compile_plan
from langarith.core.selection import NeuronSet
from langarith.model.steering import steer


def op(kind, layer, neurons, values):
    return NeuronOp(kind, layer, np.array(neurons), np.array(values, dtype=float))


def test_compile_composes_in_order():
    plan = [
        op("set", 0, [1, 2], [0.0, -1.5]),
        op("add", 0, [2, 3], [0.5, 0.25]),
        op("scale", 0, [3, 4], [2.0, 3.0]),
        op("replace", 1, [0], [7.0]),
    ]
    compiled = compile_plan(plan, n_layers=2, width=5)
    a0, b0 = compiled[0]
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # n0 untouched; n1 set 0; n2 set -1.5 then +0.5; n3 +0.25 then ×2; n4 ×3
    np.testing.assert_allclose(a0 * x + b0, [1.0, 0.0, -1.0, 8.5, 15.0])
    a1, b1 = compiled[1]
    np.testing.assert_allclose(a1 * x + b1, [7.0, 2.0, 3.0, 4.0, 5.0])


def test_invalid_operations_are_rejected():
    with pytest.raises(ValueError, match="unknown operation"):
        op("nudge", 0, [1], [1.0])
    with pytest.raises(ValueError, match="neuron index"):
        compile_plan([op("add", 0, [9], [1.0])], n_layers=1, width=5)


def capture_sites(model, layer: int, store: list):
    """A hook registered after steering's, so it sees the steered activation."""
    return model.model.layers[layer].mlp.act_fn.register_forward_hook(
        lambda _m, _i, out: store.append(out.detach().clone())
    )


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_only_the_chosen_neurons_change(arch, request):
    model, tokenizer = load_tiny(request.getfixturevalue(f"tiny_{arch}_dir"))
    ids = tokenizer(["The weather is nice today."], return_tensors="pt")
    plan = [op("set", 1, [3, 7], [0.0, -1.5]), op("add", 1, [7, 20], [0.5, 2.0])]
    base, steered = [], []
    handle = capture_sites(model, 1, base)
    with torch.no_grad():
        model(**ids)
    handle.remove()
    with steer(model, plan):
        handle = capture_sites(model, 1, steered)
        with torch.no_grad():
            model(**ids)
        handle.remove()
    before, after = base[0], steered[0]
    changed = (before != after).any(dim=(0, 1)).nonzero().flatten().tolist()
    assert changed == [3, 7, 20]
    assert torch.all(after[..., 3] == 0.0)
    assert torch.allclose(after[..., 7], torch.full_like(after[..., 7], -1.0))
    assert torch.allclose(after[..., 20], before[..., 20] + 2.0)
    keep = [j for j in range(before.shape[-1]) if j not in (3, 7, 20)]
    assert torch.equal(before[..., keep], after[..., keep])  # bit-for-bit


def test_hooks_are_removed_after_the_block(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    ids = tokenizer(["Hello there"], return_tensors="pt")
    with torch.no_grad():
        reference = model(**ids).logits
        with steer(model, [op("scale", 0, list(range(48)), [0.0] * 48)]):
            steered = model(**ids).logits
        restored = model(**ids).logits
    assert not torch.allclose(reference, steered)
    assert torch.equal(reference, restored)


def test_rows_of_a_batch_carry_their_own_plans(tiny_llama_dir):
    model, tokenizer = load_tiny(tiny_llama_dir)
    tokenizer.padding_side = "left"
    ids = tokenizer(["Guten Tag", "Guten Tag"], return_tensors="pt", padding=True)
    plans = [[], [op("set", 2, [5], [3.0])]]
    seen = []
    with steer(model, plans):
        handle = capture_sites(model, 2, seen)
        with torch.no_grad():
            model(**ids)
        handle.remove()
    out = seen[0]
    assert torch.all(out[1, :, 5] == 3.0)
    assert not torch.any(out[0, :, 5] == 3.0)
    assert torch.equal(out[0], out[1, :, :].where(torch.arange(48) != 5, out[0]))


def neuron_set() -> NeuronSet:
    masks = {
        "en": [np.array([1, 2]), np.array([], dtype=np.int64)],
        "de": [np.array([2]), np.array([0, 3])],
        "fr": [np.array([], dtype=np.int64), np.array([3])],
    }
    return NeuronSet(languages=("en", "de", "fr"), n_layers=2, width=4, masks=masks)


def tables() -> LanguageTables:
    mean = {lang: np.full((2, 4), float(i + 1)) for i, lang in enumerate(["en", "de", "fr"])}
    prob = {lang: np.full((2, 4), 0.1 * (i + 1)) for i, lang in enumerate(["en", "de", "fr"])}
    return LanguageTables(act_mean=mean, p_active=prob)


def test_deactivate_source_then_add_target_mean():
    steps = parse_condition(
        "x",
        [
            {"op": "set", "lang": "source", "value": 0.0},
            {"op": "add", "lang": "target", "value": "mean", "strength": 0.5},
        ],
    )
    plan = build_plan(steps, "en", "de", neuron_set(), tables())
    compiled = compile_plan(plan, 2, 4)
    x = np.array([10.0, 10.0, 10.0, 10.0])
    a0, b0 = compiled[0]
    # layer 0: en {1, 2} -> 0, then de {2} += 0.5 * μ_de (= 2)
    np.testing.assert_allclose(a0 * x + b0, [10.0, 0.0, 1.0, 10.0])
    a1, b1 = compiled[1]
    np.testing.assert_allclose(a1 * x + b1, [11.0, 10.0, 10.0, 11.0])


def test_other_value_sources():
    ns, tb = neuron_set(), tables()
    prob = build_plan([Step("add", "target", "prob", 2.0)], "en", "fr", ns, tb)
    assert [(o.op, o.layer, o.neurons.tolist()) for o in prob] == [("add", 1, [3])]
    np.testing.assert_allclose(prob[0].values, [0.6])  # 2 * p_fr
    diff = build_plan([Step("diffmean", "target")], "en", "fr", ns, tb)
    np.testing.assert_allclose(diff[0].values, [3.0 - 1.5])  # μ_fr − mean(μ_en, μ_de)
    replace = build_plan([Step("replace", "de", "mean", layers=(1, 1))], "en", "fr", ns, tb)
    assert [(o.op, o.layer, o.values.tolist()) for o in replace] == [("replace", 1, [2.0, 2.0])]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"op": "set", "lang": "source"}, "numeric value"),
        ({"op": "add", "lang": "target", "value": "median"}, "'mean' or 'prob'"),
        ({"op": "boost"}, "op 'boost'"),
    ],
)
def test_bad_steps_name_the_condition(raw, message):
    with pytest.raises(ValueError, match=rf"conditions\.bad\[0\].*{message}"):
        parse_condition("bad", [raw])


def test_a_generation_call_finds_the_sites_and_compiles_each_distinct_plan_once(
    tiny_llama_dir, monkeypatch
):
    import langarith.model.steering as steering
    from langarith.model.generation import generate

    model, tokenizer = load_tiny(tiny_llama_dir)
    calls = {"sites": 0, "compile": 0}
    find_sites, compile_one = steering.find_sites, steering.compile_plan

    def counted_sites(m):
        calls["sites"] += 1
        return find_sites(m)

    def counted_compile(*args):
        calls["compile"] += 1
        return compile_one(*args)

    monkeypatch.setattr(steering, "find_sites", counted_sites)
    monkeypatch.setattr(steering, "compile_plan", counted_compile)
    plan_a = [op("add", 1, [0, 3], [1.0, -1.0])]
    plan_b = [op("set", 2, [5], [0.0])]
    prompts = ["a b", "c d e", "f", "g h i j"]
    plans = [plan_a, plan_b, plan_a, [op("add", 1, [0, 3], [1.0, -1.0])]]  # equal to plan_a
    steered = generate(model, tokenizer, prompts, plans, max_new_tokens=2, batch_size=1,
                       progress=False)  # fmt: skip
    assert calls == {"sites": 1, "compile": 2}  # 4 batches, 2 distinct plans
    monkeypatch.undo()
    alone = [
        generate(model, tokenizer, [p], [plan], max_new_tokens=2, progress=False)[0]
        for p, plan in zip(prompts, plans)
    ]
    assert steered == alone


# --- the residual stream --------------------------------------------------------------------


def residual_tables() -> LanguageTables:
    """Residual means of 3 languages, 2 layers, 3 hidden dimensions, and their RMS norms."""
    means = {
        "en": np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]),
        "de": np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0]]),
        "fr": np.array([[4.0, 1.0, 2.0], [3.0, 6.0, 0.0]]),
    }
    rms = {"en": np.array([2.0, 4.0]), "de": np.array([4.0, 6.0]), "fr": np.array([6.0, 8.0])}
    return LanguageTables(
        act_mean=tables().act_mean, p_active={}, residual_mean=means, residual_rms=rms
    )


def residual_plan(raw: dict, source="en", target="fr", neurons=None):
    condition = parse_condition("r", [{"op": "diffmean", "site": "residual", **raw}])
    return condition.plan(source, target, neurons, residual_tables())


def test_residual_diffmean_directions_by_hand():
    # reference others: μ_fr − mean(μ_en, μ_de); layer 0: [4,1,2] − [.5,.5,0]
    plan = residual_plan({"lang": "target", "strength": 2.0})
    assert [(o.site, o.op, o.layer, o.neurons.tolist()) for o in plan] == [
        ("residual", "add", 0, [0, 1, 2]),
        ("residual", "add", 1, [0, 1, 2]),
    ]
    np.testing.assert_allclose(plan[0].values, 2.0 * np.array([3.5, 0.5, 2.0]))
    np.testing.assert_allclose(plan[1].values, 2.0 * np.array([3.0, 4.0, 0.0]))
    # reference source: μ_fr − μ_en, one layer
    plan = residual_plan({"reference": "source", "layers": [1, 1]})
    assert [o.layer for o in plan] == [1]
    np.testing.assert_allclose(plan[0].values, [3.0, 4.0, 0.0])
    # normalize: α · r̄ · d/‖d‖ with r̄ = mean(4, 6, 8) = 6 at layer 1 and ‖[3, 4, 0]‖ = 5
    plan = residual_plan(
        {"reference": "source", "layers": [1, 1], "normalize": True, "strength": 0.5}
    )
    np.testing.assert_allclose(plan[0].values, 0.5 * 6.0 * np.array([0.6, 0.8, 0.0]))
    # the diagonal against the source is a zero direction: no op (and no 0/0 when normalized)
    assert residual_plan({"reference": "source", "normalize": True}, source="fr") == []


def test_residual_and_neuron_steps_compose_in_one_condition():
    condition = parse_condition(
        "both",
        [
            {"op": "set", "lang": "source", "value": 0.0},
            {"op": "diffmean", "site": "residual", "lang": "target", "layers": [0, 0]},
        ],
    )
    assert condition.sites == ("mlp", "residual") and condition.needs_neurons
    plan = condition.plan("en", "de", neuron_set(), residual_tables())
    assert [(o.site, o.op, o.layer) for o in plan] == [("mlp", "set", 0), ("residual", "add", 0)]
    mlp = compile_plan(plan, 2, 4, site="mlp")
    residual = compile_plan(plan, 2, 3, site="residual")
    assert set(mlp) == {0} and set(residual) == {0}
    np.testing.assert_allclose(residual[0][1], [-2.5, 0.5, -1.0])  # μ_de − mean(μ_en, μ_fr)
    np.testing.assert_array_equal(residual[0][0], np.ones(3))
    # a residual-only condition needs no neuron selection; a neuron step does
    assert not parse_condition("r", [{"op": "diffmean", "site": "residual"}]).needs_neurons
    with pytest.raises(ValueError, match="has steps but no neuron selection"):
        condition.plan("en", "de", None, residual_tables())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"op": "add", "value": "mean", "site": "residual"}, "does not act on the residual"),
        ({"op": "diffmean", "site": "stream"}, "site 'stream'"),
        ({"op": "diffmean", "reference": "median"}, "reference 'median'"),
        ({"op": "add", "value": "mean", "reference": "source"}, "reference applies to op diffmean"),
        ({"op": "diffmean", "normalize": True}, "normalize applies to site residual"),
        ({"op": "diffmean", "site": "residual", "normalize": "yes"}, "normalize 'yes'"),
    ],
)
def test_bad_residual_steps_name_the_condition(raw, message):
    with pytest.raises(ValueError, match=rf"conditions\.bad\[0\].*{message}"):
        parse_condition("bad", [raw])


def test_residual_steps_need_the_residual_statistics_and_the_layers():
    condition = parse_condition("r", [{"op": "diffmean", "site": "residual", "layers": [0, 5]}])
    with pytest.raises(ValueError, match="reaches layer 5, but the model has 2 layers"):
        condition.plan("en", "fr", None, residual_tables())
    no_residual = LanguageTables(act_mean=tables().act_mean, p_active={})
    with pytest.raises(ValueError, match="residual-stream statistics.*record the activations"):
        parse_condition("r", [{"op": "diffmean", "site": "residual"}]).plan(
            "en", "fr", None, no_residual
        )


def capture_layers(model, store: dict):
    """Hooks on every decoder layer, registered after steering's: the steered outputs."""
    return [
        layer.register_forward_hook(
            lambda _m, _i, out, i=i: store.__setitem__(
                i, (out[0] if isinstance(out, tuple) else out).detach().clone()
            )
        )
        for i, layer in enumerate(model.model.layers)
    ]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_a_residual_plan_adds_exactly_its_direction_to_the_chosen_layer(arch, request):
    """Layer 1's output becomes its unsteered value + α·d exactly; layer 0 is unchanged bit for
    bit; layer 2 differs only because its input did."""
    model, tokenizer = load_tiny(request.getfixturevalue(f"tiny_{arch}_dir"))
    ids = tokenizer(["The weather is nice today."], return_tensors="pt")
    hidden = model.config.hidden_size
    direction = np.random.default_rng(1).normal(size=hidden)
    plan = [NeuronOp("add", 1, np.arange(hidden), 0.5 * direction, site="residual")]
    base: dict = {}
    handles = capture_layers(model, base)
    with torch.no_grad():
        model(**ids)
    for handle in handles:
        handle.remove()
    steered: dict = {}
    with steer(model, plan):
        handles = capture_layers(model, steered)
        with torch.no_grad():
            model(**ids)
        for handle in handles:
            handle.remove()
    assert torch.equal(steered[0], base[0])
    shift = torch.as_tensor(0.5 * direction, dtype=base[1].dtype)
    assert torch.equal(steered[1], base[1] + shift)  # exactly, in the model's dtype
    np.testing.assert_allclose(
        (steered[1] - base[1]).numpy(), np.broadcast_to(0.5 * direction, base[1].shape), atol=1e-6
    )
    assert not torch.allclose(steered[2], base[2])


def test_the_instruct_step_changes_the_prompt_not_the_model(tmp_path):
    from langarith.experiments.forcing import requests
    from langarith.io.prompts import read_instructions

    asked = parse_condition("asked", [{"op": "instruct"}])
    assert asked.instructed and not asked.needs_neurons and asked.sites == ()
    assert asked.plan("en", "fr", None, None) == []
    both = parse_condition(
        "asked-residual", [{"op": "instruct"}, {"op": "diffmean", "site": "residual"}]
    )
    assert both.instructed and both.sites == ("residual",)
    assert [op.site for op in both.plan("en", "fr", None, residual_tables())] == ["residual"] * 2
    path = tmp_path / "instructions.tsv"
    path.write_text(
        "source\ttarget\tinstruction\nen\tfr\tAnswer in French.\nen\ten\tAnswer in English.\n"
    )
    reqs = requests({"en": ["How are you?"]}, ["en"], ["fr", "en"], read_instructions(path))
    assert [r.prompt for r in reqs] == [
        "Q: How are you? Answer in French. \nA:",
        "Q: How are you? Answer in English. \nA:",
    ]
    assert requests({"en": ["How are you?"]}, ["en"], ["fr"])[0].prompt == "Q: How are you? \nA:"
    with pytest.raises(
        ValueError, match=r"instructions\.tsv: no instruction for 1 pair\(s\): en->de"
    ):
        requests({"en": ["How are you?"]}, ["en"], ["de"], read_instructions(path))
