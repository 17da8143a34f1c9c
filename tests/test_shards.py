"""Sharded recording: shards cover every chunk once, merge to a single pass, and a workflow run
with shards records (and after a loss rerecords) only the shard files that are missing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import repo_lines
from test_reruns import scheduled
from workflow_run import snakemake, tiny_config

from langarith.io.activations import ActivationStats, write_sites
from langarith.io.shards import max_shards, merge_shards, shard_bounds
from langarith.model.recording import chunk_batches, record_corpus

# --- splitting ------------------------------------------------------------------------------


@pytest.mark.parametrize("n_tokens", [0, 1, 63, 64, 65, 203, 256, 257, 1000, 2000])
@pytest.mark.parametrize(("chunk_tokens", "batch_size"), [(64, 1), (64, 4), (16, 3)])
@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_shards_run_the_batches_of_a_single_pass_once(n_tokens, chunk_tokens, batch_size, shards):
    stream = np.arange(n_tokens)  # every token names its position
    bounds = [
        shard_bounds(n_tokens, chunk_tokens, batch_size, k, shards) for k in range(1, shards + 1)
    ]
    # contiguous, in order, from the first token to the last
    assert bounds[0][0] == 0 and bounds[-1][1] == n_tokens
    assert all(stop == start for (_, stop), (start, _) in zip(bounds, bounds[1:]))
    assert all(start % (chunk_tokens * batch_size) == 0 for start, _ in bounds)
    # the batches of all shards, in shard order, are the batches of a single pass
    whole = list(chunk_batches(stream, chunk_tokens, batch_size))
    parts = [
        batch
        for start, stop in bounds
        for batch in chunk_batches(stream[start:stop], chunk_tokens, batch_size)
    ]
    assert len(parts) == len(whole)
    for part, batch in zip(parts, whole):
        np.testing.assert_array_equal(part, batch)
    # balanced: shard sizes in runs of batch_size chunks differ by at most one
    step = chunk_tokens * batch_size
    runs = [-(-(stop - start) // step) for start, stop in bounds]
    assert max(runs) - min(runs) <= 1
    assert sum(runs) == max_shards(n_tokens, chunk_tokens, batch_size)
    assert (min(runs) > 0) == (shards <= max_shards(n_tokens, chunk_tokens, batch_size))


def test_shard_numbers_are_checked():
    with pytest.raises(ValueError, match=r"shard must be in 1\.\.2, got 3"):
        shard_bounds(100, 10, 2, 3, 2)
    with pytest.raises(ValueError, match="shards must be >= 1, got 0"):
        shard_bounds(100, 10, 2, 1, 0)


# --- merging --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_llama_dir):
    """A prepared tiny model and an English corpus of 40 lines of the repository's text."""
    from langarith.io.corpora import Document, write_corpus
    from langarith.model.loading import prepare_model

    root = tmp_path_factory.mktemp("shards")
    model_dir = root / "models" / "tiny"
    model_dir.parent.mkdir()
    prepare_model({"kind": "local", "path": str(tiny_llama_dir)}, model_dir)
    lines = repo_lines("en", 40)
    corpus = root / "en.parquet"
    write_corpus([Document(str(i), t) for i, t in enumerate(lines)], corpus, source="en")
    return str(model_dir), str(corpus)


@pytest.mark.parametrize(
    ("chunk_tokens", "batch_size", "shards"), [(16, 2, 2), (16, 2, 3), (64, 16, 5)]
)
def test_merged_shards_equal_a_single_pass(prepared, tmp_path, chunk_tokens, batch_size, shards):
    model_dir, corpus = prepared
    recording = {"chunk_tokens": chunk_tokens, "batch_size": batch_size, "max_tokens": None}
    meta = {"model": "tiny", "lang": "en"}
    whole_sites = record_corpus(model_dir, corpus, {}, recording, meta)
    paths = []
    for shard in range(shards, 0, -1):  # any order
        sites = record_corpus(model_dir, corpus, {}, recording, meta, shard=shard, shards=shards)
        for stats in sites.values():
            assert stats.metadata["shard"] == shard and stats.metadata["shards"] == shards
        paths.append(tmp_path / f"{shard}-of-{shards}.parquet")
        write_sites(paths[-1], sites)
    parts = [ActivationStats.read(p).n_tokens for p in paths]
    merged_sites = merge_shards(paths)
    assert set(merged_sites) == set(whole_sites) == {"mlp", "residual"}
    for site, whole in whole_sites.items():  # the residual stream merges like the neurons
        merged = merged_sites[site]
        assert merged.n_tokens == whole.n_tokens == sum(parts) > 0
        np.testing.assert_array_equal(merged.n_active, whole.n_active)
        np.testing.assert_allclose(merged.act_sum, whole.act_sum, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(merged.act_sq_sum, whole.act_sq_sum, rtol=1e-12, atol=1e-9)
        assert merged.metadata == {**whole.metadata, "shards": shards}
    whole = whole_sites["mlp"]
    assert 0.2 < whole.p_active.mean() < 0.8  # both signs occur: the counts are not trivial
    # ~3,400 tokens make 4 runs of 16 chunks of 64 tokens: one of 5 shards is empty
    assert (0 in parts) == (shards > max_shards(whole.n_tokens, chunk_tokens, batch_size))
    assert (0 in parts) == (chunk_tokens == 64)


def shard_file(directory, shard, shards, **meta):
    stats = ActivationStats.zeros(2, 3)
    stats.n_tokens = 10 * shard
    stats.n_active[:] = shard
    stats.metadata = {"lang": "en", "chunk_tokens": 64, "shard": shard, "shards": shards, **meta}
    path = directory / f"{shard}-of-{shards}-{len(meta)}.parquet"
    stats.write(path)
    return path


def test_merge_adds_the_shards(tmp_path):
    merged = merge_shards([shard_file(tmp_path, k, 3) for k in (2, 3, 1)])["mlp"]
    assert merged.n_tokens == 60
    np.testing.assert_array_equal(merged.n_active, np.full((2, 3), 6))
    assert merged.metadata == {"lang": "en", "chunk_tokens": 64, "shards": 3}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([(1, 2), (1, 3)], r"1-of-3-0\.parquet' is shard 1 of 3, not of 2"),
        ([(1, 2), (1, 2)], r"1-of-2-0\.parquet' and '.*1-of-2-0\.parquet' are both shard 1"),
        ([(1, 2), (3, 2)], "shard 2 of 2 is missing"),
        ([(1, 2), (2, 2, {"lang": "de"})], r"2-of-2-1\.parquet' was recorded with other settings"),
    ],
)
def test_merge_refuses_shards_that_do_not_belong_together(tmp_path, files, message):
    paths = [shard_file(tmp_path, k, n, **(rest[0] if rest else {})) for k, n, *rest in files]
    with pytest.raises(ValueError, match=message):
        merge_shards(paths)


# --- the workflow ---------------------------------------------------------------------------

LANGS = ("en", "de")
TARGETS = [f"results/activations/tiny/{lang}.parquet" for lang in LANGS]
# a flag first: workflow_run.snakemake's `--resources` would swallow the targets otherwise
RUN = ["--nolock", *TARGETS]


def small_config(model_dir):
    config = tiny_config(model_dir)
    config["languages"] = ["en", "de", "zh"]
    config["selections"] = {"lape-10": {"top_rate": 0.1}, "lape-20": {"top_rate": 0.2}}
    config["conditions"] = {
        "baseline": [],
        "activate": [{"op": "add", "lang": "target", "value": "mean", "strength": 1.0}],
    }
    config["forcing"].update(selections=["lape-10"], conditions=["baseline", "activate"])
    for section in ("tasks", "fallback", "analysis", "quality"):
        config.pop(section, None)
    return config


def shard_config(model_dir, shards: int) -> dict:
    config = small_config(model_dir)
    config["languages"] = list(LANGS)
    config["recording"]["shards"] = shards
    return config


@pytest.fixture(scope="module")
def sharded_runs(tmp_path_factory, tiny_llama_dir):
    """The activation files of the tiny config recorded in 2 shards and in 1."""
    runs = {}
    for shards in (2, 1):
        workdir = tmp_path_factory.mktemp(f"shards-{shards}")
        snakemake(workdir, shard_config(tiny_llama_dir, shards), *RUN)
        runs[shards] = workdir
    return runs, tiny_llama_dir


@pytest.mark.slow
def test_reduced_shards_equal_the_unsharded_run(sharded_runs):
    runs, _ = sharded_runs
    for lang in LANGS:
        shard_dir = runs[2] / "results/activations/tiny/shards" / lang
        assert sorted(p.name for p in shard_dir.iterdir()) == ["1-of-2.parquet", "2-of-2.parquet"]
        parts = [ActivationStats.read(shard_dir / f"{k}-of-2.parquet") for k in (1, 2)]
        reduced = ActivationStats.read(runs[2] / f"results/activations/tiny/{lang}.parquet")
        single = ActivationStats.read(runs[1] / f"results/activations/tiny/{lang}.parquet")
        assert not (runs[1] / "results/activations/tiny/shards").exists()
        assert all(p.n_tokens > 0 for p in parts)
        assert reduced.n_tokens == single.n_tokens == sum(p.n_tokens for p in parts) == 2000
        np.testing.assert_array_equal(reduced.n_active, single.n_active)
        np.testing.assert_array_equal(reduced.n_active, parts[0].n_active + parts[1].n_active)
        np.testing.assert_allclose(reduced.act_sum, single.act_sum, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(reduced.act_sq_sum, single.act_sq_sum, rtol=1e-12, atol=1e-9)
        assert reduced.metadata == {**single.metadata, "shards": 2}
        log = runs[2] / f"logs/record_activations_shard/tiny/{lang}/2-of-2.log"
        assert "shard 2 of 2: tokens 1024 to 2000 of 2000" in log.read_text()


@pytest.mark.slow
def test_a_lost_shard_is_all_that_is_recorded_again(sharded_runs):
    runs, model_dir = sharded_runs
    workdir, config = runs[2], shard_config(model_dir, 2)
    final = workdir / "results/activations/tiny/de.parquet"
    before = ActivationStats.read(final)
    # a run killed while recording de's second shard: its file and the reduction are missing
    (workdir / "results/activations/tiny/shards/de/2-of-2.parquet").unlink()
    # (with the reduction still there, Snakemake sees an intermediate file gone: nothing to do)
    assert scheduled(workdir, config, *TARGETS) == set()
    final.unlink()
    assert scheduled(workdir, config, *TARGETS) == {
        ("record_activations_shard", "model=tiny, lang=de, shard=2, shards=2"),
        ("reduce_activations", "model=tiny, lang=de"),
    }
    snakemake(workdir, config, *RUN)
    after = ActivationStats.read(final)
    assert after.n_tokens == before.n_tokens
    np.testing.assert_array_equal(after.n_active, before.n_active)
    np.testing.assert_array_equal(after.act_sum, before.act_sum)
    assert scheduled(workdir, config, *TARGETS) == set()


@pytest.mark.slow
def test_another_shard_count_records_its_own_shard_files(sharded_runs):
    runs, model_dir = sharded_runs
    jobs = scheduled(runs[2], shard_config(model_dir, 3), *TARGETS)
    assert jobs == {
        ("record_activations_shard", f"model=tiny, lang={lang}, shard={k}, shards=3")
        for lang in LANGS
        for k in (1, 2, 3)
    } | {("reduce_activations", f"model=tiny, lang={lang}") for lang in LANGS}
    # and back to one shard per language: one recording job per language, no reduction
    jobs = scheduled(runs[2], shard_config(model_dir, 1), *TARGETS)
    assert jobs == {("record_activations", f"model=tiny, lang={lang}") for lang in LANGS}
