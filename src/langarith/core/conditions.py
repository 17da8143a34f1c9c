"""Steering conditions from the config, resolved into per-(source, target) intervention plans.

A condition is a list of steps, applied in order (deactivation first, then activation, as the
anchor does). Each step names an operation, whose neurons it acts on (``source``, ``target`` or a
fixed language code), and its value::

    {op: set,      lang: source, value: 0.0}              # deactivate: a <- c
    {op: add,      lang: target, value: mean, strength: 1} # the paper's arithmetic: a += α·μ
    {op: add,      lang: target, value: prob, strength: 1} # the anchor's earlier code: a += α·p
    {op: scale,    lang: target, strength: 2.0}            # multiplication: a <- γ·a
    {op: replace,  lang: target, value: mean}              # fixed-value replacement: a <- μ
    {op: diffmean, lang: target, strength: 1.0}            # a += α·(μ_lang − mean of the others' μ)
    {op: diffmean, lang: target, reference: source}        # a += α·(μ_lang − μ_source)

An optional ``layers: [first, last]`` (inclusive) limits a step to a layer range.

``site: residual`` moves a ``diffmean`` step from the language neurons to the residual stream
(:mod:`langarith.core.plans`): every hidden dimension of each chosen layer's output gets
``h += α·d_ℓ`` with the DiffMean direction ``d_ℓ = μ_lang,ℓ − μ_ref,ℓ`` of the per-language mean
residuals (``reference: others``, the default: the mean of the other languages' means;
``reference: source``: the source language's mean). ``normalize: true`` scales the direction to
``r̄_ℓ·d_ℓ/‖d_ℓ‖``, with ``r̄_ℓ`` the root mean square norm of layer ℓ's residual averaged over
the languages, so that α is a fraction of the stream's typical norm at every layer (what a layer
sweep compares). A residual step needs no neuron selection; ``layers`` picks one layer
(``[6, 6]``), a range, or (left out) all layers::

    {op: diffmean, site: residual, lang: target, strength: 0.5, layers: [6, 6], normalize: true}

``layers: best`` (residual steps) takes the one layer the layer sweep of the condition chose on
the calibration prompts (``quality.layer_sweep``, :mod:`langarith.experiments.layer_sweep`):
:meth:`Condition.plan` then needs ``layer``.

``strength: calibrated`` (``add`` and ``diffmean`` only) takes α per target language from the
calibration of the selection (``quality.calibration``, :mod:`langarith.experiments.calibration`):
:func:`build_plan` then needs ``alphas``, ``{target: α}``.

``{op: instruct}`` is the prompting baseline: no intervention, but every forcing prompt asks,
in the source language, for the answer in the target language (the instruction of the pair in
``forcing.instructions``, :func:`langarith.io.prompts.read_instructions`). With other steps it
combines prompting and steering.

A :class:`Condition` is the one typed form of a condition: parsed and validated once from the
config (:func:`parse_condition`), then turned into plans with :meth:`Condition.plan`. A condition
without steps is the unsteered baseline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from langarith.core.plans import SITE_KINDS, NeuronOp
from langarith.core.selection import NeuronSet

STEP_OPS = ("set", "scale", "add", "replace", "diffmean", "instruct")
INSTRUCT = "instruct"  # the prompt step: no intervention
BEST = "best"  # `layers: best`: the layer the condition's layer sweep chose
CALIBRATED = "calibrated"  # the strength of a step whose α comes from the calibration
CALIBRATABLE_OPS = ("add", "diffmean")
REFERENCES = ("others", "source")  # what a diffmean direction is taken against
RESIDUAL_OPS = ("diffmean",)


@dataclass(frozen=True)
class Step:
    op: str
    lang: str
    value: float | str | None = None
    strength: float | str = 1.0  # a number, or CALIBRATED
    layers: tuple[int, int] | None = None
    site: str = "mlp"  # SITE_KINDS; "prompt" for the instruct step
    reference: str = "others"  # diffmean only
    normalize: bool = False  # residual diffmean only
    swept: bool = False  # `layers: best`: the layer comes from the layer sweep

    @classmethod
    def from_config(cls, raw: Mapping, where: str) -> Step:
        op = raw.get("op")
        if op not in STEP_OPS:
            raise ValueError(f"{where}: op {op!r} is not one of {', '.join(STEP_OPS)}")
        if op == INSTRUCT:
            extra = sorted(set(raw) - {"op"})
            if extra:
                raise ValueError(f"{where}: op {INSTRUCT!r} takes no other keys, got {extra}")
            return cls(op=op, lang="target", site="prompt")
        value = raw.get("value")
        if op == "set" and not isinstance(value, (int, float)):
            raise ValueError(f"{where}: op 'set' needs a numeric value (the constant c)")
        if op in ("add", "replace") and value not in ("mean", "prob"):
            raise ValueError(f"{where}: op {op!r} needs value 'mean' or 'prob'")
        swept = raw.get("layers") == BEST
        layers = tuple(raw["layers"]) if raw.get("layers") is not None and not swept else None
        strength = raw.get("strength", 1.0)
        if strength == CALIBRATED:
            if op not in CALIBRATABLE_OPS:
                raise ValueError(
                    f"{where}: strength {CALIBRATED!r} applies to op add or diffmean, not {op!r}"
                )
        elif isinstance(strength, bool) or not isinstance(strength, (int, float)):
            raise ValueError(f"{where}: strength {strength!r} is not a number or {CALIBRATED!r}")
        else:
            strength = float(strength)
        site = raw.get("site", "mlp")
        if site not in SITE_KINDS:
            raise ValueError(f"{where}: site {site!r} is not one of {', '.join(SITE_KINDS)}")
        if site == "residual" and op not in RESIDUAL_OPS:
            raise ValueError(
                f"{where}: op {op!r} does not act on the residual stream (site: residual "
                f"takes op {', '.join(RESIDUAL_OPS)})"
            )
        reference = raw.get("reference", "others")
        if "reference" in raw and op != "diffmean":
            raise ValueError(f"{where}: reference applies to op diffmean, not {op!r}")
        if reference not in REFERENCES:
            raise ValueError(
                f"{where}: reference {reference!r} is not one of {', '.join(REFERENCES)}"
            )
        normalize = raw.get("normalize", False)
        if not isinstance(normalize, bool):
            raise ValueError(f"{where}: normalize {normalize!r} is not true or false")
        if normalize and site != "residual":
            raise ValueError(f"{where}: normalize applies to site residual only")
        if swept and site != "residual":
            raise ValueError(f"{where}: layers {BEST!r} applies to site residual only")
        return cls(
            op=op,
            lang=str(raw.get("lang", "target")),
            value=value,
            strength=strength,
            layers=layers,  # type: ignore[arg-type]
            site=site,
            reference=reference,
            normalize=normalize,
            swept=swept,
        )


@dataclass(frozen=True)
class Condition:
    """A named condition: its steps in order (none for the unsteered baseline)."""

    name: str
    steps: tuple[Step, ...] = ()

    def __iter__(self):
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: int) -> Step:
        return self.steps[index]

    @property
    def unsteered(self) -> bool:
        return not self.steps

    @property
    def calibrated(self) -> bool:
        """Whether a step takes its α from the calibration (``strength: calibrated``)."""
        return is_calibrated(self.steps)

    @property
    def acts_on_source(self) -> bool:
        """Whether a step reads the source language's neurons or statistics."""
        return any(
            step.lang == "source" or (step.op == "diffmean" and step.reference == "source")
            for step in self.steps
        )

    @property
    def needs_neurons(self) -> bool:
        """Whether a step acts on the language neurons (and so needs a selection)."""
        return any(step.site == "mlp" for step in self.steps)

    @property
    def sites(self) -> tuple[str, ...]:
        """The model sites the steps act on, in first-use order (the prompt step is none)."""
        return tuple(dict.fromkeys(step.site for step in self.steps if step.op != INSTRUCT))

    @property
    def swept(self) -> bool:
        """Whether a step takes its layer from the layer sweep (``layers: best``)."""
        return any(step.swept for step in self.steps)

    @property
    def instructed(self) -> bool:
        """Whether the prompts ask for the target language (an ``instruct`` step)."""
        return any(step.op == INSTRUCT for step in self.steps)

    @property
    def ops(self) -> tuple[str, ...]:
        return tuple(step.op for step in self.steps)

    def plan(
        self,
        source: str,
        target: str,
        neurons: NeuronSet | None,
        tables: LanguageTables | None,
        alphas: Mapping[str, float] | None = None,
        layer: int | None = None,
    ) -> list[NeuronOp]:
        """The plan for one (source, target) pair; ``[]`` for the unsteered baseline. ``layer``
        is the layer of the ``layers: best`` steps."""
        if self.unsteered:
            return []
        if neurons is None and self.needs_neurons:
            raise ValueError(f"condition {self.name!r} has steps but no neuron selection")
        steps = with_layer(self.steps, layer) if layer is not None else self.steps
        return build_plan(steps, source, target, neurons, tables, alphas)


def parse_condition(name: str, steps: Sequence[Mapping] | None) -> Condition:
    """The :class:`Condition` of config entry ``conditions.<name>``; ``ValueError`` naming the
    step that is wrong."""
    return Condition(
        name,
        tuple(
            Step.from_config(raw, f"conditions.{name}[{i}]") for i, raw in enumerate(steps or [])
        ),
    )


def is_calibrated(steps: Sequence[Step | Mapping]) -> bool:
    """Whether a condition (parsed steps or raw config dicts) takes its α from a calibration."""
    return any(
        (s.get("strength") if isinstance(s, Mapping) else s.strength) == CALIBRATED for s in steps
    )


def unsteered_condition(names: Sequence[str], conditions: Mapping[str, Sequence]) -> str | None:
    """The first of ``names`` whose condition (raw config steps) is unsteered: the baseline."""
    return next((name for name in names if parse_condition(name, conditions[name]).unsteered), None)


def with_alpha(
    steps: Sequence[Step], target: str, alphas: Mapping[str, float] | None
) -> list[Step]:
    """``steps`` with every calibrated strength set to ``alphas[target]``."""
    if not is_calibrated(steps):
        return list(steps)
    if alphas is None or target not in alphas:
        known = " ".join(alphas or {}) or "none"
        raise ValueError(f"no calibrated α for target {target!r} (calibrated targets: {known})")
    alpha = float(alphas[target])
    return [
        dataclasses.replace(s, strength=alpha) if s.strength == CALIBRATED else s for s in steps
    ]


def with_layer(steps: Sequence[Step], layer: int) -> list[Step]:
    """``steps`` with every ``layers: best`` step acting on ``layer`` alone."""
    return [
        dataclasses.replace(s, layers=(int(layer), int(layer)), swept=False) if s.swept else s
        for s in steps
    ]


@dataclass(frozen=True)
class LanguageTables:
    """Per-language statistics the values are read from: ``[layers, neurons]`` tables of the
    neurons, and, when recorded, ``[layers, hidden]`` means and ``[layers]`` root mean square
    norms of the residual stream."""

    act_mean: Mapping[str, np.ndarray]
    p_active: Mapping[str, np.ndarray]
    residual_mean: Mapping[str, np.ndarray] | None = None
    residual_rms: Mapping[str, np.ndarray] | None = None


def _lang_of(step: Step, source: str, target: str) -> str:
    return {"source": source, "target": target}.get(step.lang, step.lang)


def build_plan(
    steps: Sequence[Step],
    source: str,
    target: str,
    neurons: NeuronSet | None,
    tables: LanguageTables | None,
    alphas: Mapping[str, float] | None = None,
) -> list[NeuronOp]:
    """The intervention plan of ``steps`` for one (source, target) pair; ``alphas`` gives the α
    of calibrated steps per target language. ``neurons`` may be ``None`` when every step acts on
    the residual stream."""
    plan: list[NeuronOp] = []
    for step in with_alpha(steps, target, alphas):
        if step.op == INSTRUCT:  # acts on the prompt, not the model
            continue
        lang = _lang_of(step, source, target)
        if step.swept:
            raise ValueError(f"layers {BEST!r} needs the layer its layer sweep chose")
        if step.site == "residual":
            plan.extend(_residual_ops(step, lang, source, tables))
            continue
        if neurons is None:
            raise ValueError(f"op {step.op!r} on the neurons needs a neuron selection")
        if lang not in neurons.masks:
            raise ValueError(f"language {lang!r} has no neurons in this selection")
        first, last = step.layers if step.layers else (0, neurons.n_layers - 1)
        if last >= neurons.n_layers:
            raise ValueError(
                f"layers: [{first}, {last}] reaches layer {last}, but the model has "
                f"{neurons.n_layers} layers (0-{neurons.n_layers - 1})"
            )
        for layer in range(first, last + 1):
            idx = neurons.masks[lang][layer]
            if len(idx) == 0:
                continue
            plan.append(_op(step, lang, layer, idx, tables, source))
    return plan


def _diffmean(
    means: Mapping[str, np.ndarray], lang: str, reference: str, source: str
) -> np.ndarray:
    """``μ_lang − μ_ref`` of one layer: ``ref`` the mean of the other languages' means
    (``others``) or the source language's mean (``source``)."""
    if lang not in means:
        raise ValueError(f"no activation statistics for language {lang!r}")
    if reference == "source":
        if source not in means:
            raise ValueError(f"no activation statistics for source language {source!r}")
        return means[lang] - means[source]
    others = [m for code, m in means.items() if code != lang]
    if not others:
        raise ValueError("diffmean needs the statistics of at least two languages")
    return means[lang] - np.mean(others, axis=0)


def _residual_ops(
    step: Step, lang: str, source: str, tables: LanguageTables | None
) -> list[NeuronOp]:
    """``add`` ops of a residual ``diffmean`` step: α·d_ℓ (or α·r̄_ℓ·d_ℓ/‖d_ℓ‖) on every
    hidden dimension of each chosen layer; a layer whose direction is zero gets no op."""
    if tables is None or tables.residual_mean is None or tables.residual_rms is None:
        raise ValueError(
            "site: residual needs the residual-stream statistics, which these activation "
            "statistics do not hold (record the activations again)"
        )
    n_layers, hidden = next(iter(tables.residual_mean.values())).shape
    first, last = step.layers if step.layers else (0, n_layers - 1)
    if last >= n_layers:
        raise ValueError(
            f"layers: [{first}, {last}] reaches layer {last}, but the model has "
            f"{n_layers} layers (0-{n_layers - 1})"
        )
    dims = np.arange(hidden)
    ops = []
    for layer in range(first, last + 1):
        means = {code: m[layer] for code, m in tables.residual_mean.items()}
        direction = _diffmean(means, lang, step.reference, source)
        norm = float(np.linalg.norm(direction))
        if norm == 0.0:
            continue
        if step.normalize:
            rms = float(np.mean([r[layer] for r in tables.residual_rms.values()]))
            direction = direction * (rms / norm)
        ops.append(NeuronOp("add", layer, dims, step.strength * direction, site="residual"))
    return ops


def _op(
    step: Step,
    lang: str,
    layer: int,
    idx: np.ndarray,
    tables: LanguageTables | None,
    source: str,
) -> NeuronOp:
    if step.op == "set":
        return NeuronOp("set", layer, idx, np.full(len(idx), float(step.value)))  # type: ignore[arg-type]
    if step.op == "scale":
        return NeuronOp("scale", layer, idx, np.full(len(idx), step.strength))
    if tables is None:
        raise ValueError(f"op {step.op!r} needs the activation statistics of the languages")
    if step.op == "diffmean":
        means = {code: m[layer, idx] for code, m in tables.act_mean.items()}
        delta = _diffmean(means, lang, step.reference, source)
        return NeuronOp("add", layer, idx, step.strength * delta)
    source = tables.act_mean if step.value == "mean" else tables.p_active
    if lang not in source:
        raise ValueError(f"no activation statistics for language {lang!r}")
    values = source[lang][layer, idx]
    if step.op == "add":
        return NeuronOp("add", layer, idx, step.strength * values)
    return NeuronOp("replace", layer, idx, values)
