"""Calibrate the intervention strength: sweep α of the additive step, keep the best grid point.

For one (model, selection) and each target language, the steering condition is run with its
activation strength α set to every value of a grid, on the calibration prompts (disjoint from
the forcing prompts). Each output is scored "success and fluent" (lid.176 top-1 = target AND
repetition ≤ ``max_repetition``, see :mod:`langarith.quality`), and per target the grid point
with the highest share wins; ties go to the α closest to 1 (the paper's value), then the
smaller α. All grid points run in one batched generation (rows carry their own plans).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import polars as pl

from langarith.conditions import LanguageTables, Step, build_plan, is_calibrated
from langarith.forcing import ForcingRequest
from langarith.generate import generate
from langarith.neurons import NeuronSet
from langarith.quality import repetition, units

ACTIVATION_OPS = ("add", "diffmean")


def scaled_steps(steps: Sequence[Step], alpha: float) -> list[Step]:
    """``steps`` with the strength of every additive step (``add``, ``diffmean``) set to α."""
    if not any(s.op in ACTIVATION_OPS for s in steps):
        raise ValueError("calibration needs a condition with an additive step (add or diffmean)")
    return [
        dataclasses.replace(s, strength=float(alpha)) if s.op in ACTIVATION_OPS else s
        for s in steps
    ]


def sweep_outputs(
    model,
    tokenizer,
    reqs: Sequence[ForcingRequest],
    steps: Sequence[Step],
    grid: Sequence[float],
    neurons: NeuronSet,
    tables: LanguageTables,
    generation: Mapping,
) -> pl.DataFrame:
    """Generate every request at every α in one batched pass: ``alpha, source_lang,
    target_lang, question_idx, prompt, output``."""
    rows, plans = [], []
    for alpha in grid:
        alpha_steps = scaled_steps(steps, alpha)
        for req in reqs:
            rows.append((float(alpha), req.source, req.target, req.question_idx, req.prompt))
            plans.append(build_plan(alpha_steps, req.source, req.target, neurons, tables))
    outputs = generate(
        model,
        tokenizer,
        [r[4] for r in rows],
        plans,
        max_new_tokens=int(generation["max_new_tokens"]),
        repetition_penalty=float(generation.get("repetition_penalty", 1.1)),
        stop_strings=tuple(generation.get("stop_strings", ())),
        batch_size=int(generation.get("batch_size", 16)),
        positions=str(generation.get("positions", "all")),
        progress=False,
    )
    return pl.DataFrame(
        {
            "alpha": [r[0] for r in rows],
            "source_lang": [r[1] for r in rows],
            "target_lang": [r[2] for r in rows],
            "question_idx": [r[3] for r in rows],
            "prompt": [r[4] for r in rows],
            "output": outputs,
        },
        schema={
            "alpha": pl.Float64,
            "source_lang": pl.String,
            "target_lang": pl.String,
            "question_idx": pl.Int32,
            "prompt": pl.String,
            "output": pl.String,
        },
    )


def judge(
    outputs: pl.DataFrame,
    identify: Callable[[list[str]], list[str]],
    ngram: int,
    max_repetition: float,
) -> pl.DataFrame:
    """``outputs`` plus ``pred_lang``, ``repetition`` and ``success_and_fluent``."""
    texts = outputs["output"].to_list()
    return (
        outputs.with_columns(
            pl.Series("pred_lang", identify(texts), dtype=pl.String),
            pl.Series("repetition", [repetition(units(t), ngram) for t in texts], dtype=pl.Float64),
        )
        .with_columns(
            (pl.col("pred_lang") == pl.col("target_lang")).alias("success"),
            (pl.col("repetition") <= max_repetition).alias("fluent"),
        )
        .with_columns((pl.col("success") & pl.col("fluent")).alias("success_and_fluent"))
    )


def sweep_scores(judged: pl.DataFrame) -> pl.DataFrame:
    """Per (target, α): ``n, success_rate, fluent_rate, success_and_fluent``."""
    return (
        judged.group_by(["target_lang", "alpha"])
        .agg(
            pl.len().cast(pl.Int64).alias("n"),
            pl.col("success").mean().alias("success_rate"),
            pl.col("fluent").mean().alias("fluent_rate"),
            pl.col("success_and_fluent").mean().alias("success_and_fluent"),
        )
        .sort(["target_lang", "alpha"])
    )


def best_alpha(points: Sequence[tuple[float, float]]) -> float:
    """The α of ``(α, score)`` points with the highest score; ties: closest to 1, then smaller."""
    if not points:
        raise ValueError("no grid points to choose from")
    return min(points, key=lambda p: (-p[1], abs(p[0] - 1.0), p[0]))[0]


def choose(scores: pl.DataFrame) -> dict[str, dict]:
    """``{target: {alpha, success_and_fluent, success_rate, fluent_rate, sweep: [...]}}``."""
    out = {}
    for target in scores["target_lang"].unique(maintain_order=True).to_list():
        rows = scores.filter(pl.col("target_lang") == target).sort("alpha")
        sweep = rows.drop("target_lang").to_dicts()
        alpha = best_alpha([(r["alpha"], r["success_and_fluent"]) for r in sweep])
        chosen = next(r for r in sweep if r["alpha"] == alpha)
        out[target] = {
            "alpha": alpha,
            "success_and_fluent": chosen["success_and_fluent"],
            "success_rate": chosen["success_rate"],
            "fluent_rate": chosen["fluent_rate"],
            "sweep": sweep,
        }
    return out


def _load(calibration: str | Path | Mapping) -> Mapping:
    if isinstance(calibration, Mapping):
        return calibration
    from langarith.io import read_json_object

    return read_json_object(calibration)


def calibrated_alpha(calibration: str | Path | Mapping, target: str) -> float:
    """The α chosen for ``target`` in a calibration JSON file (or its loaded dict)."""
    return read_alphas(calibration, [target])[target]


def read_alphas(calibration: str | Path | Mapping, targets: Sequence[str]) -> dict[str, float]:
    """``{target: α}`` for every one of ``targets`` from a calibration (file or loaded dict),
    read once."""
    chosen = _load(calibration).get("targets", {})
    for target in targets:
        if target not in chosen:
            where = "the calibration" if isinstance(calibration, Mapping) else calibration
            raise ValueError(
                f"{where} has no α for target {target!r} (calibrated: {' '.join(chosen) or 'none'})"
            )
    return {target: float(chosen[target]["alpha"]) for target in targets}


def condition_alphas(
    steps: Sequence[Step], condition: str, calibration: str | None, targets: Sequence[str]
) -> dict[str, float] | None:
    """The α per target a calibrated condition needs (``None`` for any other condition), read
    from the calibration JSON before any model is loaded."""
    if not is_calibrated(steps):
        return None
    if calibration is None:
        raise ValueError(f"condition {condition!r} is calibrated but has no calibration file")
    return read_alphas(calibration, targets)


def check_calibrated_uses(config: Mapping, calibration: Mapping | None) -> None:
    """Every use of a calibrated condition (``strength: calibrated``) must be covered by the
    calibration: its selections calibrated, and every language it steers towards among the
    calibration targets. Raises a one-line ``ValueError`` naming the config key otherwise."""
    from langarith.config import forcing_targets
    from langarith.task_run import steer_languages

    uses = []  # (where, selections, conditions, target languages)
    forcing = config.get("forcing") or {}
    if forcing:
        uses.append(
            ("forcing", forcing["selections"], forcing["conditions"], forcing_targets(config))
        )
    for name, task in (config.get("tasks") or {}).items():
        steer = steer_languages(task, config["languages"])
        uses.append(
            (f"tasks.{name}", task.get("selections", []), task.get("conditions", []), steer)
        )
    for where, selections, conditions, targets in uses:
        for condition in conditions:
            if not is_calibrated(config["conditions"].get(condition) or []):
                continue
            if calibration is None:
                raise ValueError(
                    f"{where}.conditions: {condition!r} has strength 'calibrated' but "
                    "quality.calibration is not configured"
                )
            for selection in selections:
                if selection not in calibration["selections"]:
                    raise ValueError(
                        f"{where}.conditions: {condition!r} needs selection {selection!r} "
                        "in quality.calibration.selections"
                    )
            missing = [t for t in targets if t not in calibration["targets"]]
            if missing:
                raise ValueError(
                    f"{where}.conditions: {condition!r} needs an α for {' '.join(missing)}; "
                    "add them to quality.calibration.targets"
                )


def run_calibration_job(
    model_dir: str,
    model_options: Mapping,
    questions: str,
    activation_files: Sequence[str],
    neurons: str,
    summary: str,
    condition: str,
    steps: Sequence[Mapping],
    languages: Sequence[str],
    settings: Mapping,
    generation: Mapping,
    langid_model: str | None,
    output_json: str,
    output_table: str,
    meta: Mapping,
) -> dict:
    """The ``calibrate`` job: sweep, judge, choose, write the JSON and the per-output table."""
    from langarith.conditions import parse_condition
    from langarith.forcing import read_questions, requests
    from langarith.io import write_parquet, write_text
    from langarith.langid import LanguageIdentifier
    from langarith.models import load_configured_model

    parsed = parse_condition(condition, steps)
    neuron_set = NeuronSet.read(neurons, summary)
    tables = LanguageTables.read(languages, activation_files)
    loaded = load_configured_model(model_dir, model_options)
    identifier = LanguageIdentifier(langid_model)
    reqs = requests(read_questions(questions), settings["sources"], settings["targets"])
    outputs = sweep_outputs(
        loaded.model,
        loaded.tokenizer,
        reqs,
        parsed,
        settings["grid"],
        neuron_set,
        tables,
        generation,
    )
    judged = judge(
        outputs,
        lambda texts: [p.lang for p in identifier.predict(texts)],
        int(settings["ngram"]),
        float(settings["max_repetition"]),
    )
    result = {
        **dict(meta),
        "condition": condition,
        "grid": [float(a) for a in settings["grid"]],
        "sources": list(settings["sources"]),
        "ngram": int(settings["ngram"]),
        "max_repetition": float(settings["max_repetition"]),
        "max_new_tokens": int(generation["max_new_tokens"]),
        "targets": choose(sweep_scores(judged)),
    }
    write_parquet(judged, output_table)
    write_text(json.dumps(result, indent=2) + "\n", output_json)
    return result


CALIBRATION_DEFAULTS = {
    "grid": [0.5, 1.0, 2.0, 4.0],
    "sources": ["en"],
    "targets": None,
    "questions": "resources/prompts/calibration.tsv",
}


def resolve_calibration(config: Mapping) -> dict | None:
    """``quality.calibration`` with defaults, or ``None`` when it is not configured.

    ``selections`` default to the forcing selections, ``condition`` to the forcing condition
    the findings use, ``targets`` (also when ``all``) to the forcing targets; generation
    settings are the forcing ones, with ``max_new_tokens``/``batch_size`` overridable here.
    ``ngram`` and ``max_repetition`` are the ``quality`` section's.
    """
    from langarith.analysis.settings import main_condition
    from langarith.config import forcing_targets
    from langarith.quality import resolve_quality

    raw = (config.get("quality") or {}).get("calibration")
    if not raw:
        return None
    out = {**CALIBRATION_DEFAULTS, **dict(raw)}
    out.setdefault("selections", list(config["forcing"]["selections"]))
    out.setdefault("condition", main_condition(config))
    if out["targets"] in (None, "all"):
        out["targets"] = forcing_targets(config)
    quality = resolve_quality(config) or {}
    out["ngram"] = int(quality.get("ngram", 3))
    out["max_repetition"] = float(quality.get("max_repetition", 0.5))
    generation = dict(config["forcing"]["generation"])
    for key in ("max_new_tokens", "batch_size"):
        if key in out:
            generation[key] = out.pop(key)
    out["generation"] = generation
    condition = out["condition"]
    if condition is None or condition not in config["conditions"]:
        raise ValueError(f"quality.calibration.condition: {condition!r} is not a condition")
    ops = [s.get("op") for s in config["conditions"][condition]]
    if not any(op in ACTIVATION_OPS for op in ops):
        raise ValueError(
            f"quality.calibration.condition: {condition!r} has no additive step to scale"
        )
    for sel in out["selections"]:
        if sel not in config["selections"]:
            raise ValueError(f"quality.calibration.selections: {sel!r} is not a selection")
    for key in ("sources", "targets"):
        for code in out[key]:
            if code not in config["languages"]:
                raise ValueError(
                    f"quality.calibration.{key}: {code!r} is not a configured language"
                )
    return out
