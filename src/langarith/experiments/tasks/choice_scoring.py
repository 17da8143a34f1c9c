"""Accuracy of multiple-choice items (Belebele, XNLI), from parsed answers or log-likelihoods.

All values are percentages (0-100).
"""

from __future__ import annotations

from collections.abc import Sequence

from langarith.experiments.tasks.base import TaskItem, check_outputs


def _gold(item: TaskItem, task: str) -> int:
    if item.gold_index is None or not 0 <= item.gold_index < len(item.options):
        raise ValueError(f"{task}: item {item.item_id} ({item.lang}) has no valid gold_index")
    return item.gold_index


def parsed_accuracy(
    task: str, items: Sequence[TaskItem], predictions: Sequence[int | None]
) -> dict[str, float]:
    """``accuracy`` (unparsed = wrong) and ``parse_rate`` (share of parsed answers)."""
    check_outputs(task, items, predictions)
    correct = sum(p == _gold(it, task) for it, p in zip(items, predictions, strict=True))
    parsed = sum(p is not None for p in predictions)
    return {"accuracy": 100.0 * correct / len(items), "parse_rate": 100.0 * parsed / len(items)}


def loglik_accuracy(
    task: str, items: Sequence[TaskItem], option_logprobs: Sequence[Sequence[float]]
) -> dict[str, float]:
    """``accuracy`` of the argmax option (first one on ties) given each option's log-prob."""
    check_outputs(task, items, option_logprobs)
    correct = 0
    for item, logprobs in zip(items, option_logprobs, strict=True):
        if len(logprobs) != len(item.options):
            raise ValueError(
                f"{task}: item {item.item_id} ({item.lang}) has {len(item.options)} options "
                f"but {len(logprobs)} log-probabilities"
            )
        best = max(range(len(logprobs)), key=lambda i: (logprobs[i], -i))
        correct += best == _gold(item, task)
    return {"accuracy": 100.0 * correct / len(items)}
