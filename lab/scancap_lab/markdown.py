"""Markdown reports from tables: the lines of a table, and a report of titled sections."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def markdown(table: pd.DataFrame) -> list[str]:
    """A DataFrame as Markdown table lines."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |"
                    for row in table.itertuples(index=False)]  # fmt: skip


def write_markdown(path: Path, title: str, intro: str,
                   sections: list[tuple[str | None, list[str]]]) -> None:  # fmt: skip
    """A report: its title, its introduction, then each section's lines under its "##"
    heading (where it has one), separated by blank lines."""
    lines = [f"# {title}", "", intro, ""]
    for heading, body in sections:
        lines += [f"## {heading}", ""] if heading else []
        lines += [*body, ""]
    path.write_text("\n".join(lines))
    print(path)
