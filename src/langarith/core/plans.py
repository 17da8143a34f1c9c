"""Language arithmetics: interventions on neuron activations as data (pure; applied by
:mod:`langarith.model.steering`).

An operation acts on one *site* of one layer (``SITE_KINDS``):

* ``mlp``: the MLP neurons, the output of the layer's activation module (the quantity LAPE
  counts; :mod:`langarith.model.sites`);
* ``residual``: the residual stream, the hidden-state tensor a decoder layer outputs (the sum of
  the layer's input and its attention and MLP branches, i.e. the next layer's input;
  ``hidden_states[layer + 1]`` of ``output_hidden_states``, before the final norm); its
  "neurons" are the hidden dimensions.

Every operation is affine in the activation ``a`` of one neuron (or residual dimension):

* ``set``     a <- c                 (deactivation; c = 0, -1.5, ...)
* ``scale``   a <- γ·a               (multiplication)
* ``add``     a <- a + v             (v = α·μ_lang, α·p_lang or a difference of means)
* ``replace`` a <- v                 (v = μ_lang, the fixed-value baseline)

so any sequence of them composes to ``a <- A·a + B`` per neuron. A plan is compiled once into
per-layer vectors ``A`` and ``B`` (identity elsewhere), and the hook does one fused multiply-add;
neurons outside the plan are multiplied by exactly 1 and shifted by exactly 0, so they are
unchanged bit for bit. Rows of a batch may carry different plans. Each site kind compiles
separately (:func:`compile_plan`'s ``site``); operations on both kinds compose freely in one
plan, in order per site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OPS = ("set", "scale", "add", "replace")
SITE_KINDS = ("mlp", "residual")
POSITION_SCOPES = ("all", "prompt", "generated")


@dataclass(frozen=True)
class NeuronOp:
    """One operation on some neurons of one layer's ``site`` (``SITE_KINDS``); ``values`` has one
    entry per neuron."""

    op: str
    layer: int
    neurons: np.ndarray
    values: np.ndarray
    site: str = "mlp"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown operation {self.op!r}; expected one of {', '.join(OPS)}")
        if self.site not in SITE_KINDS:
            raise ValueError(f"unknown site {self.site!r}; expected one of {', '.join(SITE_KINDS)}")
        if len(self.neurons) != len(self.values):
            raise ValueError("an operation needs exactly one value per neuron")


Plan = Sequence[NeuronOp]


def compile_plan(
    plan: Plan, n_layers: int, width: int, site: str = "mlp"
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Compose the operations of ``plan`` on ``site`` (applied in order) into
    ``{layer: (A, B)}`` with ``a' = A·a + B``; ``width`` is that site's width."""
    if site not in SITE_KINDS:
        raise ValueError(f"unknown site {site!r}; expected one of {', '.join(SITE_KINDS)}")
    compiled: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for op in plan:
        if op.site != site:
            continue
        if not 0 <= op.layer < n_layers:
            raise ValueError(f"layer {op.layer} outside 0..{n_layers - 1}")
        if len(op.neurons) and (op.neurons.min() < 0 or op.neurons.max() >= width):
            what = "neuron" if site == "mlp" else "residual dimension"
            raise ValueError(f"{what} index outside 0..{width - 1} in layer {op.layer}")
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
        (op.site, op.op, op.layer, op.neurons.tobytes(), op.values.astype("float64").tobytes())
        for op in plan
    )
