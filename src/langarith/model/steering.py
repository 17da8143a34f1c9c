"""Steering by forward hooks: compiled plans (:mod:`langarith.core.plans`) applied to the sites
of a model (MLP neurons and the residual stream), one plan per batch row, while a ``with`` block
runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from langarith.core.plans import (
    POSITION_SCOPES,
    SITE_KINDS,
    NeuronOp,
    Plan,
    compile_plan,
    plan_key,
)
from langarith.model.hooks import ForwardHooks
from langarith.model.placement import input_device
from langarith.model.sites import (
    NeuronSites,
    find_residual_sites,
    find_sites,
    site_output,
    with_site_output,
)

Affine = dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]  # (site, layer) -> (A, B)


class CompiledPlans:
    """The sites of a model, found once, and every distinct plan compiled once: one per job (a
    generation or scoring call), shared by all of its batches."""

    def __init__(self, model):
        self.sites: NeuronSites = find_sites(model)
        self._model = model
        self._residual: NeuronSites | None = None  # found when a plan first needs it
        self._compiled: dict[tuple, Affine] = {}

    def site(self, kind: str) -> NeuronSites:
        if kind == "mlp":
            return self.sites
        if self._residual is None:
            self._residual = find_residual_sites(self._model)
        return self._residual

    def __call__(self, plan: Plan) -> Affine:
        key = plan_key(plan)
        if key not in self._compiled:
            compiled: Affine = {}
            for kind in SITE_KINDS:
                if kind == "mlp" or any(op.site == kind for op in plan):
                    sites = self.site(kind)
                    for layer, ab in compile_plan(plan, sites.n_layers, sites.width, kind).items():
                        compiled[(kind, layer)] = ab
            self._compiled[key] = compiled
        return self._compiled[key]


class Steering(ForwardHooks):
    """Forward hooks applying per-row compiled plans to every site of ``model`` a plan touches;
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
        self._plans = compiled if compiled is not None else CompiledPlans(model)
        self.sites = self._plans.sites
        self.positions = positions
        dtype = next(model.parameters()).dtype
        device = input_device(model)  # a split model's other devices: moved on first use
        compiled = [self._plans(plan) for plan in plans]
        keys = sorted({key for c in compiled for key in c})
        self.affine: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        for key in keys:
            width = self._plans.site(key[0]).width
            identity = (np.ones(width), np.zeros(width))
            a = np.stack([c.get(key, identity)[0] for c in compiled])
            b = np.stack([c.get(key, identity)[1] for c in compiled])
            self.affine[key] = (
                torch.as_tensor(a, dtype=dtype, device=device)[:, None, :],
                torch.as_tensor(b, dtype=dtype, device=device)[:, None, :],
            )

    def _applies(self, output: torch.Tensor) -> bool:
        if self.positions == "all":
            return True
        prefill = output.shape[1] > 1  # with a KV cache, decode steps see one position
        return prefill if self.positions == "prompt" else not prefill

    def _hook(self, key: tuple[str, int]):
        def hook(_module, _inputs, output):
            x = site_output(output)
            if not self._applies(x):
                return None
            a, b = self.affine[key]
            if a.device != x.device:  # a layer of a split model on another device
                a, b = self.affine[key] = (a.to(x.device), b.to(x.device))
            if x.shape[0] != a.shape[0] and a.shape[0] != 1:
                raise RuntimeError(
                    f"steering holds {a.shape[0]} row plans, the batch {x.shape[0]} rows"
                )
            return with_site_output(output, torch.addcmul(b, x, a))

        return hook

    def hooks(self):
        return [
            (self._plans.site(kind).modules[layer], self._hook((kind, layer)))
            for kind, layer in self.affine
        ]


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
