"""The README documents the running code: its domain reference is the generated one."""

from pathlib import Path

from stats_gateway.docs import BEGIN, END, SEEDS_BEGIN, SEEDS_END, render, render_seeds

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_domain_reference_matches_the_declarations():
    text = README.read_text()
    documented = text[text.index(BEGIN): text.index(END) + len(END)]
    assert documented == render(), "run: python -m stats_gateway.docs"


def test_readme_seed_endpoint_choices_match_the_modules():
    text = README.read_text()
    documented = text[text.index(SEEDS_BEGIN): text.index(SEEDS_END) + len(SEEDS_END)]
    assert documented == render_seeds(), "run: python -m stats_gateway.docs"


def test_ci_runs_exactly_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "./run test" in README.read_text()
    commands = [line.strip() for line in ci.splitlines() if "./run" in line]
    assert commands and all(c.endswith("./run test") for c in commands)
