"""The one tiny end-to-end run the workflow tests share (``conftest.tiny_dag``, once per session).

``shared_config`` is the tiny config (.test/) with two more forcing conditions, so that every
kind of output is made once: a replacement condition (the additive-vs-replacement claim) and a
calibrated one (calibration for every forcing target, its α in the pack). The run makes every
output of ``rule all`` (``ALL_OUTPUTS``): activations, selections, forcing, the four tasks,
fallback, packs, neuron analyses, findings, logit lens, quality, calibration, provenance.

Tests only read it. Dry runs of edited configs (test_reruns, test_workflow_tasks) change no
output, so they run in place, the edited config written outside the working directory
(``snakemake(configfile=...)``); a test that had to change the run would work on a copy
(``shutil.copytree`` with ``copy2``: Snakemake compares mtimes).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import NamedTuple

import yaml
from conftest import REPO, repo_corpus, snakemake_argv, write_config

MODEL = "tiny"
LANGS = ("en", "de", "fr", "zh", "es")
FORCING_CONDITIONS = (
    "baseline",
    "activate",
    "deactivate-activate",
    "deactivate-replace",
    "calibrated",
    "residual",
    "prompted",
)
NEURON_FIGURES = ("layers", "depth", "overlap", "scripts", "sharing")


def tiny_config(model_dir: Path) -> dict:
    """The tiny config (.test/) with the corpus and model paths filled in."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["corpus"]["path"] = str(repo_corpus())
    config["models"][MODEL]["source"]["path"] = str(model_dir)
    return config


def shared_config(model_dir: Path) -> dict:
    """``tiny_config`` plus a replacement, a calibrated, a residual DiffMean (its layer from the
    layer sweep) and a prompting forcing condition."""
    config = tiny_config(model_dir)
    config["conditions"]["deactivate-replace"] = [
        {"op": "set", "lang": "source", "value": 0.0},
        {"op": "replace", "lang": "target", "value": "mean"},
    ]
    config["conditions"]["calibrated"] = [
        {"op": "set", "lang": "source", "value": 0.0},
        {"op": "add", "lang": "target", "value": "mean", "strength": "calibrated"},
    ]
    config["conditions"]["residual"] = [
        {"op": "diffmean", "site": "residual", "lang": "target", "normalize": True,
         "strength": 0.5, "layers": "best"},
    ]  # fmt: skip
    config["conditions"]["prompted"] = [{"op": "instruct"}]
    config["forcing"]["conditions"] = list(FORCING_CONDITIONS)
    config["quality"]["calibration"]["targets"] = "all"  # a calibrated forcing needs every α
    config["quality"]["layer_sweep"] = {"layers": [0, 2]}
    return config


# The targets of `rule all` for `shared_config` (workflow/rules/common*.smk: all_outputs);
# test_workflow.py checks that the run's `rule all` job lists exactly these and that each one
# exists and is not empty; the test files named here check what is in them.
ALL_OUTPUTS = (
    # test_workflow: test_the_whole_dag_runs_and_writes_every_output
    *(f"results/neurons/{MODEL}/{s}.parquet" for s in ("lape-10", "lape-20")),
    f"results/scores/{MODEL}/forcing.parquet",
    f"results/figures/{MODEL}/none/forcing/baseline.png",
    *(f"results/figures/{MODEL}/lape-10/forcing/{c}.png" for c in FORCING_CONDITIONS[1:]),
    # test_workflow_tasks
    *(f"results/scores/{MODEL}/{t}.parquet" for t in ("translation", "qa", "reading", "nli")),
    f"results/figures/{MODEL}/lape-10/translation/activate.png",
    f"results/figures/{MODEL}/lape-10/qa/deactivate-activate.png",
    f"results/figures/{MODEL}/lape-10/reading/activate.png",
    f"results/figures/{MODEL}/lape-10/nli/activate.png",
    f"results/fallback/{MODEL}/lape-10/languages.parquet",
    f"results/figures/{MODEL}/lape-10/fallback.png",
    f"results/packs/{MODEL}/lape-10",
    # test_analysis_workflow
    *(
        f"results/figures/{MODEL}/{s}/neurons/{name}.png"
        for s in ("lape-10", "lape-20")
        for name in NEURON_FIGURES
    ),
    f"results/findings/{MODEL}.md",
    f"results/findings/{MODEL}.parquet",
    f"results/figures/{MODEL}/lape-10/logit_lens/deactivate-activate.png",
    f"results/quality/{MODEL}/forcing.parquet",
    f"results/figures/{MODEL}/quality/forcing.png",
    f"results/quality/{MODEL}/relevance_validation.parquet",
    f"results/figures/{MODEL}/quality/relevance_validation.png",
    f"results/quality/{MODEL}/native.parquet",
    f"results/figures/{MODEL}/quality/native.png",
    f"results/calibration/{MODEL}/lape-10.json",
    f"results/figures/{MODEL}/lape-10/calibration.png",
    f"results/figures/{MODEL}/lape-10/layer_sweep/residual.png",
    # test_determinism: test_provenance_names_versions_model_and_config (its own run)
    f"results/provenance/{MODEL}.json",
)


def snakemake(
    workdir: Path,
    config: dict,
    *args: str,
    targets: tuple[str, ...] | list[str] = (),
    configfile: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Snakemake on ``config`` in ``workdir`` with one GPU slot; the config is written to
    ``configfile`` (default ``workdir/config.yaml``)."""
    if configfile is None:
        configfile = write_config(workdir, config)
    else:
        configfile.parent.mkdir(parents=True, exist_ok=True)
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = snakemake_argv(workdir, configfile, "--resources", "gpu=1", *args, targets=targets)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


class TinyRun(NamedTuple):
    workdir: Path
    config: dict
    log: str  # Snakemake's console output


def run_shared(workdir: Path, model_dir: Path) -> TinyRun:
    """The whole tiny DAG of ``shared_config`` in ``workdir``."""
    config = shared_config(model_dir)
    result = snakemake(workdir, config)
    return TinyRun(workdir, config, result.stdout + result.stderr)


def rule_all_inputs(log: str) -> list[str]:
    """The inputs of the ``all`` job in a Snakemake console log."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^(local)?rule all:$", line.strip()):
            for following in lines[i + 1 :]:
                if following.strip().startswith("input:"):
                    return [p.strip() for p in following.split("input:", 1)[1].split(",")]
    raise AssertionError("no `rule all` job in the log")
