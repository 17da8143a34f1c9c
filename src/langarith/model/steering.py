"""Steering by forward hooks: compiled plans (:mod:`langarith.core.plans`) applied to the neuron
sites of a model, one plan per batch row, while a ``with`` block runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from langarith.core.plans import POSITION_SCOPES, NeuronOp, Plan, compile_plan, plan_key
from langarith.model.hooks import ForwardHooks
from langarith.model.placement import input_device
from langarith.model.sites import NeuronSites, find_sites

Affine = dict[int, tuple[np.ndarray, np.ndarray]]


class CompiledPlans:
    """The neuron sites of a model, found once, and every distinct plan compiled once: one per
    job (a generation or scoring call), shared by all of its batches."""

    def __init__(self, model):
        self.sites: NeuronSites = find_sites(model)
        self._compiled: dict[tuple, Affine] = {}

    def __call__(self, plan: Plan) -> Affine:
        key = plan_key(plan)
        if key not in self._compiled:
            self._compiled[key] = compile_plan(plan, self.sites.n_layers, self.sites.width)
        return self._compiled[key]


class Steering(ForwardHooks):
    """Forward hooks applying per-row compiled plans to every neuron site of ``model``;
    ``compiled`` (one per job) saves finding the sites and compiling the plans again."""

    def __init__(
        self,
        model,
        plans: Sequence[Plan],
        positions: str = "all",
        compiled: CompiledPlans | None = None,
    ):
        if positions not in POSITION_SCOPES:
            raise ValueError(f"positions must be one of {', '.join(POSITION_SCOPES)}")
        compiled_plans = compiled if compiled is not None else CompiledPlans(model)
        self.sites = compiled_plans.sites
        self.positions = positions
        dtype = next(model.parameters()).dtype
        device = input_device(model)  # a split model's other devices: moved on first use
        width = self.sites.width
        compiled = [compiled_plans(plan) for plan in plans]
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

    def hooks(self):
        return [(self.sites.modules[layer], self._hook(layer)) for layer in self.affine]


@contextmanager
def steer(
    model,
    plan: Plan | Sequence[Plan],
    positions: str = "all",
    compiled: CompiledPlans | None = None,
) -> Iterator[Steering]:
    """Apply ``plan`` to every row (or one plan per batch row) while the block runs.

    >>> with steer(model, plan):          # doctest: +SKIP
    ...     model.generate(**inputs)
    """
    plans = [plan] if not plan or isinstance(plan[0], NeuronOp) else list(plan)
    steering = Steering(model, plans, positions, compiled)
    with steering:
        yield steering
