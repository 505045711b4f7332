"""The README is a short product page and docs/ holds the reference: the generated
reference (domains, seed endpoints) is the generated one, every doc is linked from the
README, every relative link resolves, and the benchmark writes where the docs keep it."""

import re
from pathlib import Path

from bench import report
from stats_gateway.docs import (
    BEGIN, DOMAINS_DOC, END, SEEDS_BEGIN, SEEDS_DOC, SEEDS_END, render, render_seeds,
)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def test_the_domain_reference_matches_the_declarations():
    text = DOMAINS_DOC.read_text()
    documented = text[text.index(BEGIN): text.index(END) + len(END)]
    assert documented == render(), "run: python -m stats_gateway.docs"


def test_the_seed_endpoint_choices_match_the_modules():
    text = SEEDS_DOC.read_text()
    documented = text[text.index(SEEDS_BEGIN): text.index(SEEDS_END) + len(SEEDS_END)]
    assert documented == render_seeds(), "run: python -m stats_gateway.docs"


def test_ci_runs_exactly_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "./run test" in README.read_text()
    commands = [line.strip() for line in ci.splitlines() if "./run" in line]
    assert commands and all(c.endswith("./run test") for c in commands)


def test_the_readme_is_a_short_page_that_links_every_doc():
    text = README.read_text()
    assert len(text.splitlines()) <= 160, "reference belongs in docs/"
    for heading in ("## Two commands", "## Five-minute quickstart", "## Documentation"):
        assert heading in text
    linked = set(re.findall(r"\]\((docs/[^)#]+)", text))
    assert {f"docs/{p.name}" for p in DOCS.glob("*.md")} <= linked


def _relative_links(path: Path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_and_anchor_resolves():
    for page in [README, *DOCS.glob("*.md")]:
        for target in _relative_links(page):
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            assert dest.exists(), f"{page.name}: {target}"
            if anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", dest.read_text(),
                                                           flags=re.S), re.M)
                assert anchor in {_slug(h) for h in headings}, f"{page.name}: {target}"


def test_the_benchmark_block_lives_in_docs_benchmark():
    assert report.README == DOCS / "benchmark.md"
    text = report.README.read_text()
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1
    assert report.BEGIN not in README.read_text()
