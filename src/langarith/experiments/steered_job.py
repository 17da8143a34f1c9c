"""The one steered job every steering experiment runs on (forcing, tasks, calibration, the logit
lens, the fallback):

1. :func:`read_steered_job`: parse the condition once, read from its :class:`SteeringFiles` the
   α of a calibrated condition, the layer of a swept one, the neuron selection and the
   per-language tables — all before any model is loaded, so a bad input fails in seconds (the
   job's script does this and hands the :class:`SteeredJob` to the experiment);
2. :func:`langarith.model.loading.load_configured_model` loads the model (the caller's step);
3. :meth:`SteeredJob.plan` builds each row's plan for its (source, target) pair;
4. :func:`steered_generate` generates every row under its plan, identical (prompt, plan) rows
   once; the experiment writes its table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from langarith.core.conditions import Condition, LanguageTables, parse_condition
from langarith.core.plans import Plan, plan_key
from langarith.core.selection import NeuronSet
from langarith.io.selection import read_selection

GENERATION_KEYS = (
    "max_new_tokens",
    "repetition_penalty",
    "stop_strings",
    "batch_size",
    "positions",
)


@dataclass(frozen=True)
class SteeredJob:
    """A parsed condition with what its plans are built from."""

    condition: Condition
    neurons: NeuronSet | None = None
    tables: LanguageTables | None = None
    alphas: Mapping[str, float] | None = None  # {target: α} of a calibrated condition
    layer: int | None = None  # the layer of `layers: best` steps, from the layer sweep

    def plan(self, source: str, target: str) -> Plan:
        """The plan of one (source, target) pair (``[]`` when the condition is unsteered)."""
        return self.condition.plan(
            source, target, self.neurons, self.tables, self.alphas, self.layer
        )


@dataclass(frozen=True)
class SteeringFiles:
    """The files a job's plans are built from, those its rule has (``workflow.jobs.
    steering_files`` takes them from a job's inputs): the selection (``neurons`` Parquet,
    ``summary`` JSON), the statistics ``activations`` (one file per language, in the order of
    the job's languages), the ``calibration`` JSON of a calibrated condition and the
    ``layer_sweep`` JSON of a condition with ``layers: best``."""

    neurons: str | None = None
    summary: str | None = None
    activations: Sequence[str] = ()
    calibration: str | None = None
    layer_sweep: str | None = None


def read_steered_job(
    condition: str,
    steps: Sequence[Mapping] | None,
    files: SteeringFiles = SteeringFiles(),
    languages: Sequence[str] = (),
    targets: Sequence[str] = (),
    always_read: bool = False,
    with_alphas: bool = True,
    with_layer: bool = True,
) -> SteeredJob:
    """The steering of condition ``condition`` (its raw config ``steps``) from ``files``: the
    selection is read when a step acts on the neurons (or ``always_read``), the tables of
    ``languages`` when the condition has steps, the α of every one of ``targets`` when it is
    calibrated (not with ``with_alphas=False``, for a job that sets α itself) and the layer of
    its ``layers: best`` steps (not with ``with_layer=False``: the sweep itself)."""
    from langarith.io.activations import read_tables
    from langarith.io.calibration import read_alphas, read_best_layer

    parsed = parse_condition(condition, steps)
    alphas = None
    if parsed.calibrated and with_alphas:
        if files.calibration is None:
            raise ValueError(f"condition {condition!r} is calibrated but has no calibration file")
        alphas = read_alphas(files.calibration, targets)
    layer = None
    if parsed.swept and with_layer:
        if files.layer_sweep is None:
            raise ValueError(f"condition {condition!r} has layers 'best' but no layer sweep")
        layer = read_best_layer(files.layer_sweep)
    neuron_set = tables = None
    if parsed.needs_neurons or always_read:
        if files.neurons is None or files.summary is None:
            raise ValueError(f"condition {condition!r} has steps but no neuron selection")
        neuron_set = read_selection(files.neurons, files.summary)
    if (parsed.steps or always_read) and files.activations:
        tables = read_tables(languages, list(files.activations))
    return SteeredJob(parsed, neuron_set, tables, alphas, layer)


def unique_rows(prompts: Sequence[str], plans: Sequence[Plan]) -> tuple[list[int], list[int]]:
    """``(firsts, index)``: the row of the first occurrence of every distinct (prompt, plan) pair,
    and for every row the position of its pair in ``firsts``."""
    keys = [(prompt, plan_key(plan)) for prompt, plan in zip(prompts, plans)]
    position: dict[tuple, int] = {}
    firsts: list[int] = []
    for row, key in enumerate(keys):
        if key not in position:
            position[key] = len(firsts)
            firsts.append(row)
    return firsts, [position[key] for key in keys]


def steered_generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    plans: Sequence[Plan],
    generation: Mapping,
    progress: bool = True,
) -> list[str]:
    """Greedy outputs of every row under its plan; identical (prompt, plan) rows are generated
    once. ``generation`` holds every key of ``GENERATION_KEYS``."""
    from langarith.model.generation import generate

    missing = [key for key in GENERATION_KEYS if key not in generation]
    if missing:
        raise ValueError(f"generation settings lack {', '.join(missing)}")
    firsts, index = unique_rows(prompts, plans)
    texts = generate(
        model,
        tokenizer,
        [prompts[i] for i in firsts],
        [plans[i] for i in firsts],
        max_new_tokens=int(generation["max_new_tokens"]),
        repetition_penalty=float(generation["repetition_penalty"]),
        stop_strings=tuple(generation["stop_strings"]),
        batch_size=int(generation["batch_size"]),
        positions=str(generation["positions"]),
        progress=progress,
    )
    return [texts[i] for i in index]
