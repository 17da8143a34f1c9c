"""The hub repositories of a run are checked before any job (``workflow.settings.hub``): the
paper config, shrunk to the local hub's languages (``localhub.paper``), against the local hub.
A gated repository without access, a missing repository, revision or dataset config, and
``HF_HUB_OFFLINE`` with nothing cached each stop the run at once with one line that starts with
the config key; what is there already is not asked; nothing is downloaded."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import REPO

from langarith.workflow.settings import ConfigError, check_everything
from langarith.workflow.settings.hub import check_hub_sources, hub_checks_apply
from localhub import paper, repos
from localhub.server import OTHER_TOKEN

SCHEMAS = REPO / "workflow" / "schemas"
SECTIONS = {name: SCHEMAS / f"{name}.schema.yaml" for name in ("tasks", "fallback", "analysis")}
SECTIONS["quality"] = SCHEMAS / "quality.schema.yaml"
N_REPOS = 4 + 1 + 4  # the paper's models, CulturaX, the four task datasets
GATED = {"meta-llama/Llama-3.1-8B", "uonlp/CulturaX", "openlanguagedata/flores_plus"}


def checked(config: dict | None = None) -> tuple[dict, dict]:
    """The config (default: the shrunk paper config) after every other check, and its tasks."""
    config = copy.deepcopy(config or paper.shrunk_config())
    settings = check_everything(config, SCHEMAS / "config.schema.yaml", SECTIONS, root=REPO)
    return config, settings.tasks


def hub_error(config: dict, tasks: dict, workdir) -> str:
    with pytest.raises(ConfigError) as err:
        check_hub_sources(config, tasks, workdir)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def repository_requests(hub) -> list[str]:
    """The paths of the requests about repositories (huggingface_hub also asks the hub for its
    registry of agent harnesses, once)."""
    return [p for _, p in hub.hub.requests if p.startswith(("/api/models/", "/api/datasets/"))]


def assert_nothing_downloaded(hub) -> None:
    assert hub.hub.fetched == []
    assert all(path.startswith("/api/") for _, path in hub.hub.requests), hub.hub.requests


def test_a_run_with_access_passes_asking_each_repository_once(hub, tmp_path):
    hub.login()
    config, tasks = checked()
    hub.hub.requests.clear()
    check_hub_sources(config, tasks, tmp_path)
    assert_nothing_downloaded(hub)
    # one info request per repository, one access check per gated one
    asked = repository_requests(hub)
    assert len(asked) == N_REPOS + len(GATED)
    checked_access = {p.split("/", 3)[3].removesuffix("/auth-check") for p in asked if "auth" in p}
    assert checked_access == GATED
    # the pinned revision is asked for as pinned
    assert ("GET", f"/api/models/{repos.AYA_32B}/revision/v1") in hub.hub.requests


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "is gated: accept its terms at http://127.0.0.1:"),
        (OTHER_TOKEN, "is gated and the token in use has no access to it"),
    ],
)
def test_a_gated_model_without_access(hub, tmp_path, token, expected):
    hub.login(token)
    config, tasks = checked()
    message = hub_error(config, tasks, tmp_path)
    assert message.startswith("models.llama-3.1-8b.source: the model 'meta-llama/Llama-3.1-8B' ")
    assert expected in message and "/meta-llama/Llama-3.1-8B" in message
    assert "hf auth login" in message
    assert_nothing_downloaded(hub)


def test_a_missing_model(hub, tmp_path):
    hub.login()
    config, tasks = checked()
    config["models"]["mistral-nemo-12b"]["source"]["id"] = "nobody/no-such-model"
    message = hub_error(config, tasks, tmp_path)
    assert message.startswith(
        "models.mistral-nemo-12b.source: the model 'nobody/no-such-model' is not on the hub"
    )


def test_a_missing_revision(hub, tmp_path):
    hub.login()
    config, tasks = checked()
    config["models"][paper.PINNED_MODEL]["source"]["revision"] = "v9"
    message = hub_error(config, tasks, tmp_path)
    assert message.startswith(
        "models.aya-expanse-32b.source: the model 'CohereLabs/aya-expanse-32b' has no revision 'v9'"
    )


def test_a_corpus_language_the_dataset_has_no_config_for(hub, tmp_path):
    hub.login()
    config, tasks = checked()
    config["languages"] = [*config["languages"], "ru"]  # the local CulturaX has no ru
    message = hub_error(config, tasks, tmp_path)
    assert message == (
        "corpus: the dataset 'uonlp/CulturaX' has no config 'ru' (language 'ru'); its configs "
        f"are {', '.join(sorted(repos.CULTURAX_LANGS))}"
    )


def test_a_task_language_the_dataset_has_no_config_for(hub, tmp_path):
    hub.login()
    config, tasks = checked()
    tasks["qa"]["langs"] = ["de", "fr"]
    message = hub_error(config, tasks, tmp_path)
    assert message == (
        "tasks.qa.source: the dataset 'google/xquad' has no config 'xquad.fr' (language 'fr'); "
        "its configs are xquad.de, xquad.en, xquad.es"
    )


def prepare_in(workdir, config: dict, scored: tuple[str, ...] = ()) -> None:
    """Outputs as a finished part of a run leaves them: prepared models (their manifests), the
    fetched corpus, the score tables of the tasks ``scored``."""
    for name, model in config["models"].items():
        folder = workdir / "resources" / "models" / name
        folder.mkdir(parents=True)
        (folder / "langarith_model.json").write_text(json.dumps({"source": model["source"]}))
    corpus = workdir / "resources" / "corpus" / config["corpus"]["name"]
    corpus.mkdir(parents=True)
    for lang in config["languages"]:
        (corpus / f"{lang}.parquet").write_bytes(b"")
    for task in scored:
        for name in config["models"]:
            (workdir / "results" / "scores" / name).mkdir(parents=True, exist_ok=True)
            (workdir / "results" / "scores" / name / f"{task}.parquet").write_bytes(b"")


def test_what_is_there_already_is_not_asked_about(hub, tmp_path):
    """Prepared models and a fetched corpus: only the task datasets are asked about, so the
    first refusal is FLORES+'s (gated), not Llama's or CulturaX's."""
    config, tasks = checked()
    prepare_in(tmp_path, config)
    message = hub_error(config, tasks, tmp_path)
    assert message.startswith(
        "tasks.translation.source: the dataset 'openlanguagedata/flores_plus' is gated"
    )
    assert not [p for p in repository_requests(hub) if p.startswith("/api/models/")]


def test_a_scored_task_is_not_asked_about(hub, tmp_path):
    config, tasks = checked()
    prepare_in(tmp_path, config, scored=("translation",))
    check_hub_sources(config, tasks, tmp_path)  # no token: only the ungated datasets are left
    asked = {"/".join(p.split("/")[3:5]) for p in repository_requests(hub)}
    assert asked == {"google/xquad", "facebook/belebele", "facebook/xnli"}


def test_offline_with_nothing_cached_stops_without_asking(hub, tmp_path):
    hub.offline()
    config, tasks = checked()
    message = hub_error(config, tasks, tmp_path)
    assert message.startswith(
        "models.llama-3.1-8b.source: the model 'meta-llama/Llama-3.1-8B' is not in the local "
        "Hugging Face cache"
    )
    assert "HF_HUB_OFFLINE" in message
    assert hub.hub.requests == []


def test_offline_with_the_models_cached_passes_and_says_what_it_left(hub, tmp_path, capsys):
    from huggingface_hub import hf_hub_download

    hub.login()
    config, tasks = checked()
    for model in config["models"].values():
        source = model["source"]
        hf_hub_download(source["id"], "config.json", revision=source.get("revision"))
    hub.offline()
    hub.hub.requests.clear()
    check_hub_sources(config, tasks, tmp_path)
    assert hub.hub.requests == []
    err = capsys.readouterr().err
    assert (
        "HF_HUB_OFFLINE is set: the dataset(s) uonlp/CulturaX, openlanguagedata/flores_plus" in err
    )
    assert "are not checked before the run" in err


def test_a_hub_that_does_not_answer_is_a_warning(hub, tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", closed)
    config, tasks = checked()
    check_hub_sources(config, tasks, tmp_path)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == N_REPOS
    assert lines[0].startswith(
        "langarith: warning: the hub did not answer about the model 'meta-llama/Llama-3.1-8B' "
        "(models.llama-3.1-8b.source) before the run"
    )
    assert lines[0].endswith("its jobs will ask again")


def workflow_like(dryrun: bool = False, main: bool = True) -> SimpleNamespace:
    return SimpleNamespace(is_main_process=main, output_settings=SimpleNamespace(dryrun=dryrun))


def test_only_the_main_process_of_a_real_run_asks_the_hub():
    assert hub_checks_apply(workflow_like())
    assert not hub_checks_apply(workflow_like(dryrun=True))
    assert not hub_checks_apply(workflow_like(main=False))
    assert not hub_checks_apply(None)


@pytest.mark.slow
def test_snakemake_stops_before_any_job_and_a_dry_run_asks_nothing(hub, tmp_path):
    """Through the Snakefile: a run without the token for Llama fails at once with the line, no
    job started; a dry run (which needs no network) sends the hub nothing."""
    cmd = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
        "--configfile", str(paper.PAPER_YAML), "--cores", "2", "--resources", "gpu=4",
        "--config", *paper.config_args(),
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    assert (
        "langarith: config error: models.llama-3.1-8b.source: the model "
        "'meta-llama/Llama-3.1-8B' is gated: accept its terms at"
    ) in run.stderr
    assert not (tmp_path / "logs").exists() and not (tmp_path / "resources").exists()
    assert hub.hub.fetched == []
    hub.hub.requests.clear()
    dry = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert hub.hub.requests == []
