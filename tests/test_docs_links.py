"""Every relative link in the documentation points to something that exists.

The README, every page under docs/, benchmarks/README.md, slurm/README.md and
CHANGELOG.md are read; each Markdown link or image outside code (``[text](target)``) whose
target is not a URL must name an existing file or folder of the repository, and a
``#heading`` part must name a heading of the target page (GitHub's anchor rules: lower
case, punctuation dropped, spaces to hyphens, ``-1``, ``-2`` for repeats).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "CHANGELOG.md", "docs/**/*.md", "benchmarks/README.md", "slurm/README.md")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def pages(root: Path = REPO) -> list[Path]:
    found = {p for pattern in PAGES for p in root.glob(pattern)}
    return sorted(found)


def _prose_lines(text: str):
    """(line number, line without inline code) of the lines outside fenced code blocks."""
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            yield number, re.sub(r"`[^`]*`", "", line)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    kept = "".join(
        c
        for c in text
        if c in " -" or unicodedata.category(c)[0] in "LNM" or unicodedata.category(c) == "Pc"
    )
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (repeats numbered as GitHub does)."""
    seen: dict[str, int] = {}
    out = set()
    in_fence = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if in_fence or not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of the page's relative links."""
    found = []
    for number, line in _prose_lines(page.read_text()):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
                continue
            found.append((number, target))
    return found


def broken(page: Path, root: Path = REPO) -> list[str]:
    """'file:line: target (why)' for every link of ``page`` that does not resolve."""
    out = []
    where = page.relative_to(root)
    for number, target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            out.append(f"{where}:{number}: {target} (no such file)")
        elif root.resolve() not in [dest, *dest.parents]:
            out.append(f"{where}:{number}: {target} (outside the repository)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            out.append(f"{where}:{number}: {target} (no heading #{anchor} in {dest.name})")
    return out


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    assert not broken(page)


def test_the_pages_and_their_links_are_found():
    names = {str(p.relative_to(REPO)) for p in pages()}
    assert {"README.md", "docs/README.md", "benchmarks/README.md"} <= names
    assert any(t.startswith("docs/") for _, t in links(REPO / "README.md"))


def test_docs_index_lists_every_page():
    """docs/README.md names every page of docs/ (the copied run outputs under
    docs/reproduction/<run>/ are listed by their folder)."""
    index = REPO / "docs" / "README.md"
    listed = {(index.parent / t.partition("#")[0]).resolve() for _, t in links(index)}
    for page in (REPO / "docs").rglob("*.md"):
        if page == index:
            continue
        assert page.resolve() in listed or any(d in listed for d in page.resolve().parents), (
            f"docs/README.md does not list {page.relative_to(REPO)}"
        )


def test_a_broken_link_and_a_missing_heading_are_caught(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Its part: one\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#its-part-one) [top](#the-top) [url](https://example.org/x)\n"
        "# The top\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#nowhere)\n"
        "```bash\n[in code](nowhere.md)\n```\n"
        "`[inline](nowhere.md)`\n"
    )
    assert broken(page, tmp_path) == [
        "README.md:3: docs/b.md (no such file)",
        "README.md:3: docs/a.md#nowhere (no heading #nowhere in a.md)",
    ]
