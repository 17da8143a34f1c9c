"""Evaluation tasks: one module per task (translation, qa, reading, nli) with the same API.

Each task module exposes ``SPEC`` (a ``TaskSpec``), ``load_items(source, lang, max_items)``
and ``score(items, outputs)``; ``get_task(name)`` returns the module for a task name.
"""

from __future__ import annotations

from types import ModuleType

from langarith.experiments.tasks import nli, qa, reading, translation
from langarith.experiments.tasks.base import TaskItem, TaskSpec

TASKS: dict[str, ModuleType] = {
    module.SPEC.name: module for module in (translation, qa, reading, nli)
}


def get_task(name: str) -> ModuleType:
    """The task module called ``name``; ``ValueError`` naming it if unknown."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {' '.join(TASKS)}")
    return TASKS[name]


__all__ = ["TASKS", "TaskItem", "TaskSpec", "get_task"]
