"""The README's promises that a test can hold it to."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """The commands of the README's "Set up" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [c.strip() for c in re.findall(r"```sh\n(.+?)\n *```", section)]


def test_readme_opens_with_exactly_two_commands() -> None:
    assert readme_commands() == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/celeriac dev",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest",
    ]


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    found = re.search(r'^TEST_COMMAND="(.+)"$', script, re.MULTILINE)
    assert found, "TEST_COMMAND not found in .ci/run"
    assert found.group(1) == readme_commands()[1]
    assert 'bash -c "$TEST_COMMAND"' in script


def test_readme_links_to_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (ROOT / target).exists(), target
