"""The hub repositories of a run, checked before any job (``check_hub_sources``).

A model, corpus or task dataset that the hub refuses (gated without access, missing, no such
revision, no such dataset config) would otherwise fail in the first job that reads it, and a
task's dataset is read late in the DAG, after every recording. So the main Snakemake process of
a real run asks the hub about each repository it will still read (``langarith.io.hub_access``:
one or two small API requests each, nothing downloaded) and stops with one line naming the
config key on the first refusal.

Not asked: repositories whose outputs are there already (a prepared model of the same source,
a fetched corpus language, a task scored for every model); anything in a dry run (which needs no
network) or in a job's own process. With ``HF_HUB_OFFLINE=1`` the hub is never asked: models
are looked for in the local cache, and the datasets left to their jobs, as stderr says. A hub
that does not answer (no network) is a warning, not an error: the jobs try again.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langarith.io.hub_access import Wanted


def _hub_dataset(path: object, data_files: object = None) -> bool:
    """A dataset on the hub (``org/name``), not a packaged builder over local files (``json``
    with ``data_files``) or a local directory."""
    return isinstance(path, str) and "/" in path and not data_files and not Path(path).exists()


def _prepared(workdir: Path, name: str, source: Mapping) -> bool:
    import json

    manifest = workdir / "resources" / "models" / name / "langarith_model.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("source") == dict(source)
    except (OSError, ValueError, AttributeError):
        return False


def wanted_repositories(config: Mapping, tasks: Mapping, workdir: Path) -> list[Wanted]:
    """The hub repositories the run will still read, in config order (models, corpus, tasks)."""
    from langarith.experiments.tasks.sources import fill

    wanted: list[Wanted] = []
    for name, model in config["models"].items():
        source = model["source"]
        if source.get("kind") == "hub" and not _prepared(workdir, name, source):
            setting = f"models.{name}.source"
            wanted.append(Wanted("model", source["id"], source.get("revision"), setting))
    corpus = config["corpus"]
    if corpus.get("kind") == "hub" and _hub_dataset(
        corpus.get("dataset"), corpus.get("data_files")
    ):
        folder = workdir / "resources" / "corpus" / corpus["name"]
        fetched = {lang for lang in config["languages"] if (folder / f"{lang}.parquet").is_file()}
        missing = [lang for lang in config["languages"] if lang not in fetched]
        if missing:
            names = corpus.get("configs") or {}
            configs = tuple((names.get(lang, lang), lang) for lang in missing)
            wanted.append(
                Wanted("dataset", corpus["dataset"], corpus.get("revision"), "corpus", configs)
            )
    for task, settings in tasks.items():
        source = settings["source"]
        if source.get("kind") != "hub" or not _hub_dataset(
            source.get("path"), source.get("data_files")
        ):
            continue
        scores = [workdir / "results" / "scores" / m / f"{task}.parquet" for m in config["models"]]
        if all(path.is_file() for path in scores):
            continue
        configs = ()
        if source.get("config"):
            configs = tuple((fill(source["config"], lang), lang) for lang in settings["langs"])
        setting = f"tasks.{task}.source"
        wanted.append(Wanted("dataset", source["path"], source.get("revision"), setting, configs))
    return wanted


def hub_checks_apply(workflow: Any) -> bool:
    """Only the main process of a run that executes jobs asks the hub (not a dry run, not the
    process of a job)."""
    if workflow is None or not getattr(workflow, "is_main_process", True):
        return False
    output = getattr(workflow, "output_settings", None)
    return not getattr(output, "dryrun", False)


def check_hub_sources(config: Mapping, tasks: Mapping, workdir: str | Path = ".") -> None:
    """``ConfigError`` with the one line of the first hub repository of the run that cannot be
    read (see the module docstring); warnings on stderr for what could not be asked."""
    from huggingface_hub import constants

    from langarith.io.hub_access import HubUnreachable, cached_model_problem, merge, problem
    from langarith.workflow.settings.checks import ConfigError

    wanted = merge(wanted_repositories(config, tasks, Path(workdir)))
    if not wanted:
        return
    if constants.is_offline_mode():
        for w in wanted:
            if w.kind == "model" and (line := cached_model_problem(w)) is not None:
                raise ConfigError(f"{w.setting}: {line}")
        datasets = [w.repo_id for w in wanted if w.kind == "dataset"]
        if datasets:
            print(
                f"langarith: HF_HUB_OFFLINE is set: the dataset(s) {', '.join(datasets)} are not "
                "checked before the run; their jobs read them from the local cache",
                file=sys.stderr,
            )
        return
    for w in wanted:
        try:
            line = problem(w)
        except HubUnreachable as err:
            print(
                f"langarith: warning: the hub did not answer about the {w.kind} {w.repo_id!r} "
                f"({w.setting}) before the run ({err}); its jobs will ask again",
                file=sys.stderr,
            )
            continue
        if line is not None:
            raise ConfigError(f"{w.setting}: {line}")
