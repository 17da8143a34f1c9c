"""Figures of the steering analyses: logit lens, output quality, calibration sweeps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from langarith.figures.neurons import save  # noqa: E402


def plot_logit_lens(lens: pl.DataFrame, title: str, path: str | Path) -> None:
    """Mean target-language mass of the top-k tokens per layer, steered (solid) and unsteered
    (dashed), one colour per target; right: the same for English."""
    mean = (
        lens.group_by(["target_lang", "steered", "layer"])
        .agg(pl.col("target_mass").mean(), pl.col("english_mass").mean())
        .sort(["target_lang", "steered", "layer"])
    )
    targets = mean["target_lang"].unique(maintain_order=True).to_list()
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for k, target in enumerate(targets):
        for steered in (False, True):
            rows = mean.filter((pl.col("target_lang") == target) & (pl.col("steered") == steered))
            style = dict(
                color=colours(k % 10), ls="-" if steered else "--", lw=1.5 if steered else 1
            )
            label = f"{target} steered" if steered else f"{target} unsteered"
            axes[0].plot(rows["layer"], rows["target_mass"], label=label, **style)
            axes[1].plot(rows["layer"], rows["english_mass"], **style)
    axes[0].set_title("target-language mass of the top tokens")
    axes[1].set_title("English mass of the top tokens")
    layers = sorted(set(mean["layer"]))
    for ax in axes:
        ax.set_xticks(layers, [str(i) for i in layers], fontsize=7)
        ax.set_xlabel("layer")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("probability mass")
    axes[0].legend(fontsize=6, ncol=2)
    fig.suptitle(title)
    save(fig, path)


def plot_quality(summary: pl.DataFrame, title: str, path: str | Path) -> None:
    """Per (selection, condition): success, fluent, and success-and-fluent shares, and the mean
    relevance and steering score where relevance was measured."""
    overall = summary.filter(pl.col("target_lang") == "all").sort(["selection", "condition"])
    labels = [f"{s}\n{c}" for s, c in zip(overall["selection"], overall["condition"])]
    bars = [
        ("success_rate", "#4C72B0"),
        ("fluent_rate", "#55A868"),
        ("success_and_fluent", "#C44E52"),
    ]
    relevance = overall.get_column("mean_relevance", default=None)
    if relevance is not None and relevance.null_count() < len(overall):
        bars += [("mean_relevance", "#8172B2"), ("steering_score", "#CCB974")]
    fig, ax = plt.subplots(figsize=(max(5, 0.55 * len(bars) * len(labels) + 2), 3.8))
    width = 0.8 / len(bars)
    for k, (column, colour) in enumerate(bars):
        xs = [i + (k - (len(bars) - 1) / 2) * width for i in range(len(labels))]
        values = overall[column].fill_null(0.0)
        ax.bar(xs, values, width, label=column.replace("_", " "), color=colour)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of outputs / score")
    max_rep = summary["max_repetition"][0] if len(summary) else float("nan")
    ax.set_title(f"{title}\nfluent = repeated-trigram share ≤ {max_rep:g}")
    ax.legend(fontsize=8)
    save(fig, path)


def plot_calibration(calibration: dict, title: str, path: str | Path) -> None:
    """Success-and-fluent (solid) and success (dotted) against α per target; chosen α marked."""
    colours = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for k, (target, info) in enumerate(calibration["targets"].items()):
        alphas = [p["alpha"] for p in info["sweep"]]
        colour = colours(k % 10)
        ax.plot(
            alphas,
            [p["success_and_fluent"] for p in info["sweep"]],
            "o-",
            color=colour,
            label=f"{target}: α = {info['alpha']:g}",
        )
        ax.plot(alphas, [p["success_rate"] for p in info["sweep"]], ":", color=colour)
        ax.plot([info["alpha"]], [info["success_and_fluent"]], "*", ms=12, color=colour)
    grid = calibration.get("grid") or []
    if grid and min(grid) > 0:
        ax.set_xscale("log", base=2)
        ax.set_xticks(grid, [f"{a:g}" for a in grid])
    ax.set_xlabel("α (strength of the additive step)")
    ax.set_ylabel("share of outputs")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title}\nsolid: success and fluent, dotted: success, star: chosen α")
    ax.legend(fontsize=7)
    save(fig, path)


def plot_layer_sweep(sweep: dict, title: str, path: str | Path) -> None:
    """Success, success-and-fluent and (when scored) mean relevance and relevance margin against
    the layer a residual step acts on, over every calibration output; the chosen layer starred."""
    scores = sweep["scores"]
    layers = [s["layer"] for s in scores]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(layers, [s["success_rate"] for s in scores], "o:", label="success")
    ax.plot(layers, [s["success_and_fluent"] for s in scores], "o-", label="success and fluent")
    if all("mean_relevance" in s for s in scores):
        ax.plot(layers, [s["mean_relevance"] for s in scores], "s--", label="mean relevance")
    if all(s.get("mean_relevance_margin") is not None for s in scores):
        margins = [s["mean_relevance_margin"] for s in scores]
        ax.plot(layers, margins, "d-.", label="mean relevance margin")
    best = next(s for s in scores if s["layer"] == sweep["best_layer"])
    ax.plot([best["layer"]], [best["success_and_fluent"]], "*", ms=14, color="black")
    ax.set_xticks(layers)
    ax.set_xlabel("layer whose residual stream is steered")
    ax.set_ylabel("share of outputs")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{title}\nstar: the chosen layer {sweep['best_layer']}")
    ax.legend(fontsize=7)
    save(fig, path)


def plot_relevance_validation(table: pl.DataFrame, title: str, path: str | Path) -> None:
    """The relevance encoder's AUC per language: same-content against different-content pairs
    with the pivot language (0.5 = chance)."""
    rows = table.sort("lang")
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * len(rows) + 2), 3.6))
    ax.bar(rows["lang"].to_list(), rows["auc"].fill_null(0.0).to_list(), color="#8172B2")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("AUC (same vs different content)")
    pivot = rows["pivot"][0] if len(rows) else "?"
    encoder = rows["encoder"][0] if len(rows) else "?"
    ax.set_title(f"{title}\nencoder {encoder}, pairs with {pivot}; dashed: chance")
    ax.tick_params(axis="x", labelsize=8)
    save(fig, path)


def plot_native(scores: pl.DataFrame, title: str, path: str | Path) -> None:
    """Per language, the share of answers to its own questions (unsteered) in that language,
    and the share also fluent: what the model writes when simply asked in the language."""
    langs = scores["lang"].to_list()
    fig, ax = plt.subplots(figsize=(max(5, 0.4 * len(langs) + 2), 3.6))
    x = range(len(langs))
    ax.bar([i - 0.2 for i in x], scores["native_rate"].to_list(), 0.4, label="in the language")
    ax.bar(
        [i + 0.2 for i in x],
        scores["native_fluent_rate"].to_list(),
        0.4,
        label="in the language and fluent",
    )
    ax.set_xticks(list(x), langs)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("share of answers")
    ax.set_title(f"{title}\nunsteered answers to each language's own questions")
    ax.legend(fontsize=7)
    save(fig, path)
