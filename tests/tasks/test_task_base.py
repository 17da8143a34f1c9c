"""The shared pieces: source validation, language names, item limits, the task registry."""

from __future__ import annotations

import pytest

from langarith.experiments.tasks import TASKS, get_task
from langarith.experiments.tasks.base import (
    TaskItem,
    check_outputs,
    first_n,
    flores_code,
    language_name,
)
from langarith.experiments.tasks.sources import BUILTIN_ROOT, check_source, fill


def test_registry_has_the_four_tasks_with_the_anchor_limits():
    assert set(TASKS) == {"translation", "qa", "reading", "nli"}
    limits = {name: module.SPEC.max_new_tokens for name, module in TASKS.items()}
    assert limits == {"translation": 128, "qa": 64, "reading": 32, "nli": 32}
    assert "\n\n" in get_task("qa").SPEC.stop_strings
    with pytest.raises(ValueError, match="'sib200'"):
        get_task("sib200")


def test_language_names_cover_paper_and_extra_test_languages():
    assert language_name("de") == "German"
    assert language_name("th") == "Thai"
    assert flores_code("zh") == "zho_Hans"
    with pytest.raises(ValueError, match="'xx'"):
        language_name("xx")
    with pytest.raises(ValueError, match="'th'"):
        flores_code("th")


def test_first_n_keeps_file_order_and_rejects_bad_limits():
    assert first_n([3, 1, 2], 2, "qa") == [3, 1]
    assert first_n([3, 1, 2], None, "qa") == [3, 1, 2]
    assert first_n([3, 1, 2], 10, "qa") == [3, 1, 2]
    with pytest.raises(ValueError, match="max_items"):
        first_n([1], -1, "qa")


def test_check_source_names_the_bad_field():
    assert check_source({"kind": "builtin"}, "qa") == "builtin"
    assert check_source({"kind": "hub", "path": "json", "data_files": "x", "split": "train"}, "qa")
    with pytest.raises(ValueError, match="'kind'"):
        check_source({"kind": "web"}, "qa")
    with pytest.raises(ValueError, match="'path'"):
        check_source({"kind": "local"}, "qa")
    with pytest.raises(ValueError, match="splt"):
        check_source({"kind": "hub", "path": "x", "splt": "test"}, "qa")
    with pytest.raises(ValueError, match="data_files"):  # hub-only key on a local source
        check_source({"kind": "local", "path": "x", "data_files": "y"}, "qa")
    with pytest.raises(ValueError, match="dict"):
        check_source(["local"], "qa")


def test_placeholders_and_builtin_root():
    assert fill("xquad.{lang}", "de") == "xquad.de"
    assert fill("{flores}.txt", "ru") == "rus_Cyrl.txt"
    # FLORES+ relabelled zho_Hans (FLORES-200, Belebele) as cmn_Hans; the others are unchanged
    assert fill("{flores}/{flores_plus}", "zh") == "zho_Hans/cmn_Hans"
    assert fill("{flores_plus}", "no") == "nob_Latn"
    with pytest.raises(ValueError, match="'th'"):
        fill("{flores}", "th")
    with pytest.raises(ValueError, match="'th'"):
        fill("{flores_plus}", "th")
    assert BUILTIN_ROOT.parts[-3:] == ("experiments", "tasks", "builtin")
    assert (BUILTIN_ROOT / "nli").is_dir()


def test_builtin_with_missing_explicit_path(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        get_task("nli").load_items({"kind": "builtin", "path": str(tmp_path / "nowhere")}, "en")


def test_check_outputs_counts():
    item = TaskItem("0", "en", "p", ("r",))
    check_outputs("qa", [item], ["x"])
    with pytest.raises(ValueError, match="1 items but 2 outputs"):
        check_outputs("qa", [item], ["x", "y"])
    with pytest.raises(ValueError, match="no items"):
        check_outputs("qa", [], [])
    assert item.reference_lang == "en"
    assert TaskItem("0", "de", "p", ("r",), target_lang="en").reference_lang == "en"
