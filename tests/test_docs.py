"""The documentation: generated pages equal what the code gives, every local link and anchor resolves, every page is
in the MkDocs navigation, and the README stays a landing page that states the test command."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _make_docs():
    spec = importlib.util.spec_from_file_location("make_docs", ROOT / "scripts" / "make_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("page", ["docs/metrics.md", "docs/cli.md"])
def test_generated_pages_are_up_to_date(page):
    expected = _make_docs().PAGES[page]()
    assert (ROOT / page).read_text() == expected, f"{page} is out of date: run python scripts/make_docs.py"


def test_metrics_page_lists_every_registered_metric():
    import monai_kcross

    text = (DOCS / "metrics.md").read_text()
    for info in [*monai_kcross.list_metrics(), *monai_kcross.list_no_reference_metrics()]:
        assert f"| `{info.name}` |" in text, info.name
        if info.doi:
            assert f"https://doi.org/{info.doi}" in text


def _slug(heading: str) -> str:
    """The anchor GitHub and MkDocs give a heading (lower case, punctuation dropped, spaces to dashes)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def _local_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_slug_matches_the_renderers():
    assert _slug(" `monai-kcross score`") == "monai-kcross-score"
    assert _slug(" Intensity policy (`data_range`)") == "intensity-policy-data_range"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_local_links_and_anchors_exist(page):
    links = _local_links(page)
    for target in links:
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        assert destination.exists(), f"{page.name}: link to missing {target}"
        if anchor and destination.suffix == ".md":
            assert anchor in _anchors(destination), f"{page.name}: no heading #{anchor} in {destination.name}"


def test_every_docs_page_is_linked_from_the_readme_and_in_the_mkdocs_nav():
    nav = set(re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M))
    pages = {p.name for p in DOCS.glob("*.md")}
    assert nav == pages, f"mkdocs.yml nav and docs/ differ: {sorted(nav ^ pages)}"
    linked = {Path(t.partition("#")[0]).name for t in _local_links(ROOT / "README.md")}
    assert pages - {"index.md"} <= linked, f"README links none of {sorted(pages - {'index.md'} - linked)}"


def test_readme_is_a_landing_page_that_states_the_test_command():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 8 * 1024, "README.md over 8 KB: move the detail into docs/"
    assert "./run tests" in readme and "./run demo" in readme and ".ci/run" in readme
