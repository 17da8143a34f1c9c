"""Provenance without a workflow run: the commit read from the three layouts of ``.git`` (a
detached HEAD, a loose ref, packed refs) and the config hash against a hash computed here."""

from __future__ import annotations

import hashlib
from pathlib import Path

from langarith.io.provenance import canonical_json, config_hash, workflow_commit

SHA_A = "0123456789abcdef0123456789abcdef01234567"
SHA_B = "89abcdef0123456789abcdef0123456789abcdef"
SHA_C = "fedcba9876543210fedcba9876543210fedcba98"


def fake_repo(root: Path, head: str, files: dict[str, str] | None = None) -> Path:
    git = root / ".git"
    git.mkdir(parents=True)
    (git / "HEAD").write_text(head)
    for name, text in (files or {}).items():
        (git / name).parent.mkdir(parents=True, exist_ok=True)
        (git / name).write_text(text)
    return root


def test_a_detached_head_is_the_commit_itself(tmp_path):
    assert workflow_commit(fake_repo(tmp_path, SHA_A + "\n")) == SHA_A


def test_a_branch_is_read_from_its_loose_ref_before_packed_refs(tmp_path):
    repo = fake_repo(
        tmp_path,
        "ref: refs/heads/main\n",
        {
            "refs/heads/main": SHA_B + "\n",
            # a stale packed entry for the same branch: the loose ref is newer and wins
            "packed-refs": f"# pack-refs with: peeled\n{SHA_C} refs/heads/main\n",
        },
    )
    assert workflow_commit(repo) == SHA_B
    assert workflow_commit(str(repo)) == SHA_B


def test_a_packed_branch_is_found_among_the_packed_refs(tmp_path):
    packed = "\n".join(
        [
            "# pack-refs with: peeled fully-peeled sorted",
            f"{SHA_A} refs/heads/feature",
            f"{SHA_B} refs/heads/main",
            f"^{SHA_C}",  # the peeled line of an annotated tag: one field, skipped
            f"{SHA_C} refs/tags/v1",
        ]
    )
    repo = fake_repo(tmp_path, "ref: refs/heads/main\n", {"packed-refs": packed + "\n"})
    assert workflow_commit(repo) == SHA_B


def test_no_repository_or_no_such_ref_gives_none(tmp_path):
    assert workflow_commit(None) is None
    assert workflow_commit(tmp_path / "nothing-here") is None
    assert workflow_commit(fake_repo(tmp_path / "empty", "")) is None
    missing = fake_repo(
        tmp_path / "missing",
        "ref: refs/heads/gone\n",
        {"packed-refs": f"{SHA_A} refs/heads/main\n"},
    )
    assert workflow_commit(missing) is None
    unborn = fake_repo(tmp_path / "unborn", "ref: refs/heads/main\n")  # a fresh `git init`
    assert workflow_commit(unborn) is None


def test_the_config_hash_is_the_sha256_of_sorted_compact_json():
    config = {"b": [2, "é"], "a": {"y": 1.5, "x": None}}
    text = '{"a":{"x":null,"y":1.5},"b":[2,"é"]}'  # written out: key order, no spaces, UTF-8
    assert canonical_json(config) == text
    assert config_hash(config) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert config_hash({"a": {"x": None, "y": 1.5}, "b": [2, "é"]}) == config_hash(config)
    assert config_hash({**config, "b": [2, "e"]}) != config_hash(config)


def test_the_record_names_the_dtype_setting_and_what_it_resolved_to(tmp_path):
    from langarith.io.manifest import write_manifest
    from langarith.io.provenance import collect

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    write_manifest(model, {"source": {"kind": "local", "path": "."}, "path": "."})
    dtype = {"setting": "auto", "resolved": "bfloat16", "why": "auto: the CPU has native bf16"}
    record = collect("m", model, {"dtype": "auto"}, {"a": 1}, dtype=dtype)
    assert record["model"]["dtype"] == dtype
    assert "dtype" not in collect("m", model, {"dtype": "auto"}, {"a": 1})["model"]
