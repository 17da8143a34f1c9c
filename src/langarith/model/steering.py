"""Steering by forward hooks: compiled plans (:mod:`langarith.core.plans`) applied to the neuron
sites of a model, one plan per batch row, while a ``with`` block runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from langarith.core.plans import POSITION_SCOPES, NeuronOp, Plan, compile_plan
from langarith.model.placement import input_device
from langarith.model.sites import find_sites


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
