"""``config/paper.yaml`` end to end on the local hub: real ``snakemake`` on the paper config
itself, with ``--config`` overrides that only shrink sizes (``localhub.paper``), every model in
``bfloat16``, the paper's own model and dataset ids served by the local hub.

One run goes through every rule of the paper DAG: all four paper models are downloaded,
recorded (in shards, reduced) and get their provenance; ``aya-expanse-32b`` (Cohere, placed by
accelerate with ``device_map: auto``, pinned to an older revision) also goes through the rest of
the DAG (selections, forcing, quality, calibration, logit lens, packs, the four tasks, fallback,
analyses, findings), which runs the same code for every model. The tests read that run:

* the set of rules that ran is the set of rules of the unshrunk paper DAG (its dry run), less
  the ``all`` target rule;
* provenance records the commit a pinned tag resolved to, and the hashes of that commit's files;
* every model's statistics equal a computation in the test from the repository's own files:
  the hub's text cut at the corpus budget, tokenized, packed and chunked by hand, the model run
  in bfloat16 and ``act(gate_proj(x))`` of every layer summed in float64: counts exact, sums to
  float64 rounding (and within bfloat16 rounding of a float64 forward);
* each task is scored from the hub's dataset rows, every cell, with scores that follow from the
  generations; the logit lens's last layer is the model's own next-token distribution.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import REPO, snakemake_argv
from test_paper_config import job_counts, paper_dry_run
from workflow_run import rule_all_inputs

from localhub import paper, repos
from localhub.conftest import point_clients_at
from localhub.server import GOOD_TOKEN

pytestmark = pytest.mark.slow

FULL = "aya-expanse-32b"  # the model that goes through the whole DAG
TASKS = ("translation", "qa", "reading", "nli")
NLI_CLASSES = ("entailment", "neutral", "contradiction")  # XNLI's labels 0, 1, 2
# the second copy of the weights in Mistral's and Meta's own formats, never downloaded
NOT_LOADED = ("consolidated.safetensors", "original/")


@dataclass
class PaperRun:
    workdir: Path
    log: str  # Snakemake's console output
    rules: Counter  # jobs per rule in the run
    paper_rules: Counter  # jobs per rule in the dry run of the unshrunk paper config
    config: dict  # the shrunk paper config, typed (as the config check types --config)
    fetched: list[tuple[str, str]]  # (repository, path) of every file the hub served
    wall_s: float


def snakemake(workdir: Path, *args: str, targets=()) -> subprocess.CompletedProcess:
    """Snakemake on the paper config shrunk by ``--config`` (``localhub.paper``)."""
    cmd = snakemake_argv(
        workdir, paper.PAPER_YAML, "--resources", "gpu=4", *args, "--config",
        *paper.config_args(), targets=targets,
    )  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=3000)


def ran_rules(log: str) -> Counter:
    return Counter(re.findall(r"^(?:local)?rule (\w+):$", log, re.M))


@pytest.fixture(scope="module")
def paper_run(local_hub, tmp_path_factory) -> PaperRun:
    root = tmp_path_factory.mktemp("paper-run")
    workdir = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        point_clients_at(mp, local_hub.url, root / "hf-home")
        mp.setenv("HF_TOKEN", GOOD_TOKEN)  # Llama, CulturaX and FLORES+ are gated
        # the jobs import the package of this checkout, whose Snakefile runs
        mp.setenv(
            "PYTHONPATH",
            os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
        )
        start = time.monotonic()
        # the dry run of the unshrunk paper config (its rules), beside the shrunk run
        with ThreadPoolExecutor(1) as pool:
            unshrunk = pool.submit(paper_dry_run)
            shrunk = snakemake(workdir, "--dry-run")
            assert shrunk.returncode == 0, shrunk.stderr[-3000:]
            targets = [p for p in rule_all_inputs(shrunk.stdout) if f"/{FULL}" in p]
            targets += [f"results/provenance/{m}.json" for m in paper.PAPER_MODELS]
            targets += [
                f"results/activations/{m}/{lang}.parquet"
                for m in paper.PAPER_MODELS
                for lang in paper.LANGUAGES
            ]
            local_hub.fetched.clear()
            run_start = time.monotonic()
            run = snakemake(workdir, targets=targets)
            run_wall = time.monotonic() - run_start
            dry_out = unshrunk.result()
        wall = time.monotonic() - start
        fetched = list(local_hub.fetched)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-6000:]
    jobs = sum(ran_rules(log).values())
    print(f"\npaper run: {jobs} jobs in {run_wall:.0f} s, {wall:.0f} s with the two dry runs")
    return PaperRun(
        workdir=workdir,
        log=log,
        rules=ran_rules(log),
        paper_rules=job_counts(dry_out),
        config=paper.shrunk_config(),
        fetched=fetched,
        wall_s=wall,
    )


def test_every_rule_of_the_paper_dag_ran(paper_run):
    paper_rules = set(paper_run.paper_rules)
    assert "record_activations_shard" in paper_rules and "reduce_activations" in paper_rules
    assert set(paper_run.rules) == paper_rules - {"all"}
    n_models, n_langs = len(paper.PAPER_MODELS), len(paper.LANGUAGES)
    assert paper_run.rules["prepare_model"] == paper_run.rules["provenance"] == n_models
    assert paper_run.rules["record_activations_shard"] == n_models * n_langs * 2
    assert paper_run.rules["fetch_corpus"] == n_langs


def repo_commit(local_hub, name: str) -> tuple[str, dict[str, bytes]]:
    """The commit paper model ``name`` ran at (``v1`` if pinned, else ``main``) and its files."""
    repo = local_hub.repos[("model", paper.PAPER_MODELS[name])]
    sha = repo.refs["v1" if name == paper.PINNED_MODEL else "main"]
    return sha, repo.commits[sha]


def test_provenance_records_the_pinned_revision_and_its_files(paper_run, local_hub):
    for name, repo_id in paper.PAPER_MODELS.items():
        record = json.loads((paper_run.workdir / f"results/provenance/{name}.json").read_text())
        model = record["model"]
        repo = local_hub.repos[("model", repo_id)]
        sha, files = repo_commit(local_hub, name)
        assert model["revision"] == sha, name
        assert model["source"] == paper_run.config["models"][name]["source"]
        assert model["dtype"] == {
            "setting": "bfloat16",
            "resolved": "bfloat16",
            "why": "set in the config",
        }
        if name == paper.PINNED_MODEL:
            assert model["source"]["revision"] == "v1" and sha != repo.refs["main"]
        else:
            assert model["source"]["revision"] is None
        loaded = {p for p in files if "/" not in p and not p.startswith(NOT_LOADED)}
        weights = {p for p in loaded if p.endswith(".safetensors")}
        assert weights and weights <= set(model["files_sha256"])
        assert not set(model["files_sha256"]) - loaded  # Mistral's consolidated copy is not there
        for path in weights | {"config.json", "tokenizer.json"}:
            assert model["files_sha256"][path] == hashlib.sha256(files[path]).hexdigest()


def test_the_hub_served_every_dataset_and_no_second_copy_of_the_weights(paper_run):
    served = {}
    for repo, path in paper_run.fetched:
        served.setdefault(repo, set()).add(path)
    for repo_id in paper.PAPER_MODELS.values():
        assert not [p for p in served[repo_id] if p.startswith(NOT_LOADED)], repo_id
    assert {f"{lang}/{lang}_part_00000.parquet" for lang in paper.LANGUAGES} <= served[
        "uonlp/CulturaX"
    ]
    assert {"devtest/deu_Latn.parquet", "devtest/cmn_Hans.parquet", "devtest/eng_Latn.parquet"} <= (
        served["openlanguagedata/flores_plus"]
    )
    assert "xquad.de/validation-00000-of-00001.parquet" in served["google/xquad"]
    assert "data/deu_Latn.jsonl" in served["facebook/belebele"]
    assert "de/test-00000-of-00001.parquet" in served["facebook/xnli"]


# --- the statistics, computed again ---------------------------------------------------------


def corpus_documents(lang: str, max_chars: int) -> list[str]:
    """CulturaX's rows of ``lang`` on the local hub, up to the row that reaches ``max_chars``."""
    docs, n = [], 0
    for text in repos.repo_text.lines(lang, repos.CULTURAX_ROWS):
        docs.append(text)
        n += len(text)
        if n >= max_chars:
            break
    return docs


def model_directory(files: dict[str, bytes], out: Path) -> Path:
    for path, data in files.items():
        if not path.startswith(NOT_LOADED):
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_bytes(data)
    return out


def direct_statistics(model, tokenizer, docs: list[str], recording: dict):
    """``(n_tokens, n_active, act_sum, act_sq_sum, act_sum_fp64)`` of ``docs``: the ids of the
    documents one after the other (no special tokens), cut at ``max_tokens``, in rows of
    ``chunk_tokens`` with BOS in front, ``batch_size`` rows per forward pass; each layer's
    ``act_fn(gate_proj(x))`` of its MLP input ``x`` computed here in the model's dtype and
    summed in float64 without the BOS position; ``act_sum_fp64``: from ``x`` and ``gate_proj``
    in float64."""
    ids = [i for d in docs if d for i in tokenizer(d, add_special_tokens=False)["input_ids"]]
    stream = ids[: recording["max_tokens"]]
    assert len(stream) == recording["max_tokens"]
    chunk, batch_size = recording["chunk_tokens"], recording["batch_size"]
    rows = [[tokenizer.bos_token_id, *stream[i : i + chunk]] for i in range(0, len(stream), chunk)]
    layers = model.model.layers
    inputs: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(layers))}
    handles = [
        layer.mlp.register_forward_pre_hook(lambda _m, args, i=i: inputs[i].append(args[0]))
        for i, layer in enumerate(layers)
    ]
    try:
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                model.model(
                    input_ids=torch.tensor(rows[start : start + batch_size]), use_cache=False
                )
    finally:
        for handle in handles:
            handle.remove()
    n_active, act_sum, act_sq_sum, fp64 = [], [], [], []
    with torch.no_grad():
        for i, layer in enumerate(layers):
            mlp = layer.mlp
            acts = [mlp.act_fn(mlp.gate_proj(x))[:, 1:].double() for x in inputs[i]]
            a = torch.cat([t.reshape(-1, t.shape[-1]) for t in acts])
            n_active.append((a > 0).sum(0).numpy())
            act_sum.append(a.sum(0).numpy())
            act_sq_sum.append((a * a).sum(0).numpy())
            weight = mlp.gate_proj.weight.double()
            exact = [mlp.act_fn(x[:, 1:].double() @ weight.T) for x in inputs[i]]
            fp64.append(torch.cat([t.reshape(-1, t.shape[-1]) for t in exact]).sum(0).numpy())
    return len(stream), *map(np.stack, (n_active, act_sum, act_sq_sum, fp64))


def recorded(path: Path) -> dict[str, np.ndarray]:
    table = pq.read_table(path).to_pandas()
    table = table[table["site"] == "mlp"].drop(columns="site").sort_values(["layer", "neuron"])
    n_layers, width = table["layer"].max() + 1, table["neuron"].max() + 1
    assert len(table) == n_layers * width
    return {c: table[c].to_numpy().reshape(n_layers, width) for c in table.columns}


@pytest.mark.parametrize("name", list(paper.PAPER_MODELS))
def test_each_models_statistics_equal_a_float64_computation(paper_run, local_hub, name):
    config = paper_run.config
    recording, max_chars = config["recording"], config["corpus"]["max_chars"]
    tokenizer, model = load_tiny(local_hub, name)
    for lang in paper.LANGUAGES:
        docs = corpus_documents(lang, max_chars)
        fetched = pq.read_table(paper_run.workdir / f"resources/corpus/culturax/{lang}.parquet")
        assert fetched.column("text").to_pylist() == docs, lang  # the hub's rows, cut at the budget
        n_tokens, n_active, act_sum, act_sq_sum, fp64 = direct_statistics(
            model, tokenizer, docs, recording
        )
        stats = recorded(paper_run.workdir / f"results/activations/{name}/{lang}.parquet")
        assert (stats["n_tokens"] == n_tokens).all()
        np.testing.assert_array_equal(stats["n_active"], n_active)
        np.testing.assert_allclose(stats["act_sum"], act_sum, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(stats["act_sq_sum"], act_sq_sum, rtol=1e-12, atol=1e-9)
        # and that is act(gate_proj(x)) up to bfloat16 rounding
        scale = np.abs(fp64).sum(axis=1, keepdims=True) / fp64.shape[1]
        assert np.abs(stats["act_sum"] - fp64).max() <= 0.02 * scale.max(), (name, lang)
        assert 0 < n_active.sum() < n_tokens * n_active.size  # neither dead nor saturated


def load_tiny(local_hub, name: str):
    """Tokenizer and bfloat16 model of paper model ``name``, from the repository's own files."""
    import transformers

    _, files = repo_commit(local_hub, name)
    with tempfile.TemporaryDirectory() as tmp:
        directory = model_directory(files, Path(tmp))
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
        model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.bfloat16)
    return tokenizer, model.eval()


# --- tasks and the logit lens of the model that ran the whole DAG ---------------------------


def read_frame(path: Path):
    import pandas as pd

    return pd.read_parquet(path)


def generations(paper_run, task: str):
    """Every generation of ``task`` (the baseline and the steered condition) of ``FULL``."""
    import pandas as pd

    root = paper_run.workdir / "results" / "generations" / FULL
    return pd.concat(
        [read_frame(root / "none" / task / "baseline.parquet")]
        + [read_frame(root / "lape-1" / task / "activate.parquet")]
    )


def hub_references(task: str, lang: str, n: int) -> list[tuple[str, ...]]:
    """The references of the first ``n`` items of ``lang`` as the local hub's dataset holds them."""
    root = repos.repo_text.TASK_SETS
    entry = repos.repo_text.language(lang)
    if task == "translation":  # FLORES+ devtest: the built-in sentences after the 4 of dev
        lines = (root / "translation" / f"{entry.flores}.txt").read_text(encoding="utf-8")
        return [(line,) for line in lines.splitlines()[4 : 4 + n]]
    if task == "qa":
        data = json.loads((root / "qa" / f"xquad.{lang}.json").read_text(encoding="utf-8"))
        qas = [q for a in data["data"] for p in a["paragraphs"] for q in p["qas"]]
        return [tuple(dict.fromkeys(a["text"] for a in q["answers"])) for q in qas[:n]]
    raise ValueError(task)


@pytest.mark.parametrize("task", TASKS)
def test_each_task_is_scored_in_every_cell_from_the_hubs_rows(paper_run, task):
    from langarith.experiments.tasks.run import TASK_METRICS

    settings = paper_run.config["tasks"][task]
    langs, n_items = settings["langs"], settings["max_items"]
    scores = read_frame(paper_run.workdir / "results" / "scores" / FULL / f"{task}.parquet")
    assert set(scores["model"]) == {FULL} and set(scores["task"]) == {task}
    cells = set(zip(scores["condition"], scores["test_lang"], scores["steer_lang"]))
    expected = {("baseline", lang, "none") for lang in langs}
    expected |= {("activate", lang, steer) for lang in langs for steer in paper.LANGUAGES}
    assert cells == expected
    assert set(TASK_METRICS[task][:1]) <= set(scores["metric"])
    assert (scores["n"] == n_items).all()
    frame = generations(paper_run, task)
    # finite, but for the per-class NLI scores of a class none of the items has (NaN, as nli says)
    undefined = set()
    if task == "nli":
        for lang, items in frame.groupby("source_lang"):
            absent = set(NLI_CLASSES) - {NLI_CLASSES[g] for g in items["gold_index"]}
            undefined |= {(lang, name) for name in absent}
    metric = scores["metric"].str.removesuffix("_improvement")
    nan = [(lang, m) in undefined for lang, m in zip(scores["test_lang"], metric)]
    assert (np.isnan(scores["value"]) == np.array(nan)).all()
    # the improvement rows are the steered value less the baseline's, per test language
    value = {
        (r.condition, r.test_lang, r.steer_lang, r.metric): r.value for r in scores.itertuples()
    }
    for (condition, lang, steer, metric), v in value.items():
        if metric.endswith("_improvement"):
            base = value[("baseline", lang, "none", metric.removesuffix("_improvement"))]
            steered = value[(condition, lang, steer, metric.removesuffix("_improvement"))]
            assert v == pytest.approx(steered - base, nan_ok=True)
    for (condition, lang, steer), cell in frame.groupby(
        ["condition", "source_lang", "target_lang"]
    ):
        assert len(cell) == n_items
        if task in ("translation", "qa"):  # the rows of the hub's dataset
            refs = [tuple(r) for r in cell["references"]]
            assert refs == hub_references(task, lang, n_items), (task, lang)
        if task == "translation":
            from sacrebleu.metrics import CHRF

            chrf = CHRF(word_order=2).corpus_score(
                list(cell["output"]), [[r[0] for r in cell["references"]]]
            )
            assert value[(condition, lang, steer, "chrf++")] == pytest.approx(chrf.score)
        if task in ("reading", "nli"):  # scored by each option's log-likelihood
            logliks = np.stack(cell["option_logliks"].to_list())
            assert np.isfinite(logliks).all() and (logliks < 0).all()
            assert (np.ptp(logliks, axis=1) > 0).all()  # the options do differ
            best = logliks.argmax(axis=1)  # the first on ties, as the scorer
            accuracy = 100.0 * float(np.mean(best == cell["gold_index"].to_numpy()))
            assert value[(condition, lang, steer, "accuracy_loglik")] == pytest.approx(accuracy)


def test_the_logit_lens_ends_in_the_models_own_distribution(paper_run, local_hub):
    """The unsteered lens at the last layer is the model's next-token distribution: for the
    Cohere model that includes its ``logit_scale`` (0.0625 for the 32B)."""
    lens = paper_run.config["analysis"]["logit_lens"]
    results = paper_run.workdir / "results"
    table = read_frame(
        results / "logit_lens" / FULL / lens["selection"] / f"{lens['condition']}.parquet"
    )
    tokenizer, model = load_tiny(local_hub, FULL)
    assert model.config.logit_scale == 0.0625
    last = table[(table["layer"] == model.config.num_hidden_layers - 1) & ~table["steered"]]
    assert set(last["source_lang"]) == set(lens["sources"]) and len(last) > 0
    forcing = read_frame(results / "quality" / FULL / "none" / "forcing" / "baseline.parquet")
    prompt_of = {(r.source_lang, r.question_idx): r.prompt for r in forcing.itertuples()}
    for row in last.itertuples():
        ids = tokenizer(prompt_of[(row.source_lang, row.question_idx)], return_tensors="pt")
        with torch.no_grad():
            logits = model(**ids).logits[0, -1].float()
        expected = torch.softmax(logits, -1).topk(lens["top_k"]).values.numpy()
        # a tiny random model is close to uniform (1/vocabulary), but not that close; without
        # the logit scale the top probabilities would be ~35% higher
        assert expected[0] * logits.numel() > 1.01
        np.testing.assert_allclose(np.asarray(row.top_probs), expected, rtol=1e-3)
