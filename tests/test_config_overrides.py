"""``--config`` overrides of nested keys: Snakemake reads every scalar inside a ``--config``
value as a string (YAML's BaseLoader); the config check gives such a string its YAML type where
the schema refuses the string, and nowhere else.

The overrides here are parsed by Snakemake's own ``--config`` parser and merged by its own
``update_config``, as a run does, then checked by ``check_everything``."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import REPO, repo_corpus
from snakemake.cli import parse_config
from snakemake.utils import update_config
from test_config_errors import SCHEMAS, SECTIONS, fake_model

from langarith.workflow.settings import ConfigError, check_everything
from langarith.workflow.settings.overrides import nested_strings, retype_overrides


@pytest.fixture
def base(tmp_path) -> dict:
    """The tiny test config (.test/) with a fake local model and the repository's text."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["corpus"]["path"] = str(repo_corpus())
    config["models"]["tiny"]["source"]["path"] = str(fake_model(tmp_path / "model"))
    return config


def overridden(config: dict, *entries: str) -> tuple[dict, dict]:
    """``config`` with the ``--config`` ``entries`` merged in, as Snakemake does; and the
    overrides as Snakemake parsed them."""
    overrides = parse_config(list(entries))
    merged = copy.deepcopy(config)
    update_config(merged, overrides)
    return merged, overrides


def check(config: dict, overrides: dict) -> None:
    check_everything(
        config, SCHEMAS / "config.schema.yaml", SECTIONS, root=REPO, overrides=overrides
    )


def test_snakemake_reads_nested_scalars_as_strings():
    """What the retyping is for (if Snakemake starts typing them, it is a no-op)."""
    overrides = parse_config(["recording={max_tokens: 512, prepend_bos: false}", "seed=3"])
    assert overrides == {"recording": {"max_tokens": "512", "prepend_bos": "false"}, "seed": 3}
    assert nested_strings(overrides) == {("recording", "max_tokens"), ("recording", "prepend_bos")}


def test_nested_numbers_booleans_and_nulls_get_their_type(base):
    config, overrides = overridden(
        base,
        "recording={max_tokens: 512, prepend_bos: false, chunk_tokens: 32}",
        "selections={lape-10: {top_rate: 0.2}}",
        "forcing={generation: {max_new_tokens: 3, repetition_penalty: 1}}",
    )
    check(config, overrides)
    assert config["recording"]["max_tokens"] == 512
    assert config["recording"]["chunk_tokens"] == 32
    assert config["recording"]["prepend_bos"] is False
    assert config["selections"]["lape-10"]["top_rate"] == 0.2
    assert config["forcing"]["generation"] == {**base["forcing"]["generation"], **{
        "max_new_tokens": 3, "repetition_penalty": 1
    }}  # fmt: skip
    # untouched keys keep their value from the config file
    assert config["recording"]["batch_size"] == base["recording"]["batch_size"]


def test_the_optional_sections_and_list_items_are_typed_too(base):
    assert "tasks" in base and "quality" in base
    config, overrides = overridden(
        base,
        "tasks={nli: {max_items: 2, generation: {max_new_tokens: 4}}}",
        "quality={calibration: {grid: [0.5, 1, 2]}}",
    )
    check(config, overrides)
    assert config["tasks"]["nli"]["max_items"] == 2
    assert config["tasks"]["nli"]["generation"]["max_new_tokens"] == 4
    assert config["quality"]["calibration"]["grid"] == [0.5, 1, 2]


def test_a_string_the_schema_wants_stays_a_string(base):
    """Norwegian is `no` (YAML 1.1 would read False), a revision may look like a number."""
    base["languages"] = [*base["languages"][:2]]
    base["models"]["tiny"]["source"] = {"kind": "hub", "id": "org/model", "revision": None}
    config, overrides = overridden(
        base,
        'languages=[en, "no"]',
        "models={tiny: {source: {revision: 2024}}}",
        "corpus={name: '12'}",
    )
    changed = retype_overrides(config, overrides, SCHEMAS / "config.schema.yaml", SECTIONS)
    assert changed == []
    assert config["languages"] == ["en", "no"]
    assert config["models"]["tiny"]["source"]["revision"] == "2024"
    assert config["corpus"]["name"] == "12"


def test_null_clears_a_budget(base):
    config, overrides = overridden(base, "recording={max_tokens: null}")
    assert config["recording"]["max_tokens"] == "null"
    check(config, overrides)
    assert config["recording"]["max_tokens"] is None


def test_a_typed_value_out_of_range_is_named_as_typed(base):
    config, overrides = overridden(base, "selections={lape-10: {top_rate: 1.5}}")
    with pytest.raises(ConfigError, match=r"^selections\.lape-10\.top_rate: 1\.5 is outside"):
        check(config, overrides)


def test_a_float_for_a_count_is_still_refused(base):
    config, overrides = overridden(base, "recording={max_tokens: 512.0}")
    with pytest.raises(ConfigError, match=r"recording\.max_tokens: 512\.0 is not an integer"):
        check(config, overrides)


def test_values_from_config_files_are_never_retyped(base):
    """Only the overrides' strings: a string in a config file is what its author wrote."""
    base["recording"]["max_tokens"] = "512"
    config, overrides = overridden(base, "recording={chunk_tokens: 32}")
    with pytest.raises(ConfigError, match=r"recording\.max_tokens: '512' is not of type"):
        check(config, overrides)


def test_a_file_config_with_the_same_values_is_equal(base):
    """The typed overrides equal the same values in a config file (what a run's params see)."""
    entry = "recording={max_tokens: 512, prepend_bos: false}"
    config, overrides = overridden(base, entry)
    check(config, overrides)
    from_file = copy.deepcopy(base)
    update_config(from_file, yaml.safe_load(entry.replace("=", ": ", 1).join(["{", "}"])))
    check(from_file, {})
    assert config == from_file
