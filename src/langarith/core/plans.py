"""Language arithmetics: interventions on neuron activations as data (pure; applied by
:mod:`langarith.model.steering`).

Every operation is affine in the activation ``a`` of one neuron:

* ``set``     a <- c                 (deactivation; c = 0, -1.5, ...)
* ``scale``   a <- γ·a               (multiplication)
* ``add``     a <- a + v             (v = α·μ_lang, α·p_lang or a difference of means)
* ``replace`` a <- v                 (v = μ_lang, the fixed-value baseline)

so any sequence of them composes to ``a <- A·a + B`` per neuron. A plan is compiled once into
per-layer vectors ``A`` and ``B`` (identity elsewhere), and the hook does one fused multiply-add;
neurons outside the plan are multiplied by exactly 1 and shifted by exactly 0, so they are
unchanged bit for bit. Rows of a batch may carry different plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OPS = ("set", "scale", "add", "replace")
POSITION_SCOPES = ("all", "prompt", "generated")


@dataclass(frozen=True)
class NeuronOp:
    """One operation on some neurons of one layer; ``values`` has one entry per neuron."""

    op: str
    layer: int
    neurons: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown operation {self.op!r}; expected one of {', '.join(OPS)}")
        if len(self.neurons) != len(self.values):
            raise ValueError("an operation needs exactly one value per neuron")


Plan = Sequence[NeuronOp]


def compile_plan(plan: Plan, n_layers: int, width: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Compose ``plan`` (applied in order) into ``{layer: (A, B)}`` with ``a' = A·a + B``."""
    compiled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for op in plan:
        if not 0 <= op.layer < n_layers:
            raise ValueError(f"layer {op.layer} outside 0..{n_layers - 1}")
        if len(op.neurons) and (op.neurons.min() < 0 or op.neurons.max() >= width):
            raise ValueError(f"neuron index outside 0..{width - 1} in layer {op.layer}")
        a, b = compiled.get(op.layer, (np.ones(width), np.zeros(width)))
        idx, v = op.neurons, op.values.astype(np.float64)
        if op.op in ("set", "replace"):
            a[idx], b[idx] = 0.0, v
        elif op.op == "scale":
            a[idx], b[idx] = a[idx] * v, b[idx] * v
        else:  # add
            b[idx] = b[idx] + v
        compiled[op.layer] = (a, b)
    return compiled


def plan_key(plan: Plan) -> tuple:
    """A hashable key of a plan (equal keys = identical interventions)."""
    return tuple(
        (op.op, op.layer, op.neurons.tobytes(), op.values.astype("float64").tobytes())
        for op in plan
    )
