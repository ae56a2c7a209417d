"""The documentation stands alone: no file cites a definitions file outside the repository, and
every link from the README into docs/ (and between the docs) reaches an existing file and heading."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Spelled in two parts so that this file does not match itself.
OUTSIDE_CITATIONS = ("REFERENCE" + ".md", "REFERENCE" + " §")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def repository_files() -> list[Path]:
    """Tracked files and new ones git does not ignore (so a file is checked before its commit)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listing.decode().split("\0") if name and (ROOT / name).is_file()]


def heading_anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    return {heading_anchor(line.lstrip("#")) for line in markdown.read_text().splitlines()
            if line.startswith("#")}


def doc_links(markdown: Path) -> list[tuple[Path, str]]:
    """(target file, anchor) of every relative link of `markdown` into a docs/*.md file."""
    links = []
    for target in LINK.findall(markdown.read_text()):
        path, _, anchor = target.partition("#")
        resolved = (markdown.parent / path).resolve() if path else markdown
        if path.endswith(".md") and resolved.parent == ROOT / "docs":
            links.append((resolved, anchor))
    return links


def test_heading_anchor_follows_github_rules():
    assert heading_anchor(" ViNTK: what the paper says ") == "vintk-what-the-paper-says"
    assert heading_anchor("Partial τ given size") == "partial-τ-given-size"


def test_no_file_cites_a_definitions_file_outside_the_repository():
    offending = []
    for path in repository_files():
        data = path.read_bytes()
        if b"REFERENCE" not in data or b"\0" in data[:8192]:
            continue
        text = data.decode("utf-8", errors="replace")
        offending += [f"{path.relative_to(ROOT)}: {citation!r}" for citation in OUTSIDE_CITATIONS
                      if citation in text]
    assert not offending


def test_every_docs_link_of_the_readme_and_the_docs_resolves():
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    links = {source: doc_links(source) for source in sources}
    assert links[ROOT / "README.md"], "the README links no docs/ file"
    for source, targets in links.items():
        for target, anchor in targets:
            assert target.is_file(), f"{source.name} links missing {target.relative_to(ROOT)}"
            assert not anchor or anchor in anchors(target), f"{source.name}: no #{anchor} in {target.name}"


def test_the_readme_links_every_docs_file():
    linked = {target for target, _ in doc_links(ROOT / "README.md")}
    assert set((ROOT / "docs").glob("*.md")) <= linked
