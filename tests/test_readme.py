"""The README as a newcomer reads it: how to run scancap on their own folder on the first
screen, then what it does, with a picture of the report; results without dated history."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
FIRST_SCREEN = 45  # lines a browser shows before any scrolling, give or take


def test_the_first_screen_says_how_to_run_it_on_your_own_folder() -> None:
    first = "\n".join(README.splitlines()[:FIRST_SCREEN])
    assert "make demo" in first and "make test" in first
    assert re.search(r"\.venv/bin/scancap run /path/to/\w+ --out", first)
    assert "source .venv/bin/activate" in first  # or activate the environment first


def test_what_it_does_comes_before_the_results_with_a_picture_of_the_report() -> None:
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    what = next(i for i, s in enumerate(sections) if s.startswith("What it does"))
    results = next(i for i, s in enumerate(sections) if s.startswith("Results"))
    assert what < results and what <= 1  # right after the quick start
    pictures = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", README)
    assert pictures and all((ROOT / picture).is_file() for picture in pictures)


def test_the_results_table_holds_no_dated_history() -> None:
    rows = [line for line in README.splitlines() if line.startswith("| ")]
    assert len(rows) > 20
    dated = [row for row in rows if re.search(r"\b20\d\d-\d\d-\d\d\b|\buntil 20\d\d", row)]
    assert not dated, dated  # history belongs in the reports
