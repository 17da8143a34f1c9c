"""Language arithmetics: interventions on neuron activations as data, applied by forward hooks.

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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from langarith.offload import input_device
from langarith.sites import find_sites

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


class Steering:
    """Forward hooks applying per-row compiled plans to every neuron site of ``model``."""

    def __init__(self, model, plans: Sequence[Plan], positions: str = "all"):
        if positions not in POSITION_SCOPES:
            raise ValueError(f"positions must be one of {', '.join(POSITION_SCOPES)}")
        self.sites = find_sites(model)
        self.positions = positions
        dtype = next(model.parameters()).dtype
        device = input_device(model)  # a split model's other devices: moved on first use
        n_layers, width = self.sites.n_layers, self.sites.width
        compiled = [compile_plan(plan, n_layers, width) for plan in plans]
        layers = sorted({layer for c in compiled for layer in c})
        identity = (np.ones(width), np.zeros(width))
        self.affine: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for layer in layers:
            a = np.stack([c.get(layer, identity)[0] for c in compiled])
            b = np.stack([c.get(layer, identity)[1] for c in compiled])
            self.affine[layer] = (
                torch.as_tensor(a, dtype=dtype, device=device)[:, None, :],
                torch.as_tensor(b, dtype=dtype, device=device)[:, None, :],
            )
        self._handles: list = []

    def _applies(self, output: torch.Tensor) -> bool:
        if self.positions == "all":
            return True
        prefill = output.shape[1] > 1  # with a KV cache, decode steps see one position
        return prefill if self.positions == "prompt" else not prefill

    def _hook(self, layer: int):
        def hook(_module, _inputs, output: torch.Tensor) -> torch.Tensor | None:
            if not self._applies(output):
                return None
            a, b = self.affine[layer]
            if a.device != output.device:  # a layer of a split model on another device
                a, b = self.affine[layer] = (a.to(output.device), b.to(output.device))
            if output.shape[0] != a.shape[0] and a.shape[0] != 1:
                raise RuntimeError(
                    f"steering holds {a.shape[0]} row plans, the batch {output.shape[0]} rows"
                )
            return torch.addcmul(b, output, a)

        return hook

    def __enter__(self) -> Steering:
        for layer in self.affine:
            module = self.sites.modules[layer]
            self._handles.append(module.register_forward_hook(self._hook(layer)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


@contextmanager
def steer(model, plan: Plan | Sequence[Plan], positions: str = "all") -> Iterator[Steering]:
    """Apply ``plan`` to every row (or one plan per batch row) while the block runs.

    >>> with steer(model, plan):          # doctest: +SKIP
    ...     model.generate(**inputs)
    """
    plans = [plan] if not plan or isinstance(plan[0], NeuronOp) else list(plan)
    steering = Steering(model, plans, positions)
    with steering:
        yield steering
