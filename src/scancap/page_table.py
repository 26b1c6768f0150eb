"""Tables that name pages: a CSV with a `path` column and something to say about each page
(its label, a reference caption), read with errors that name the line and the reason."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from scancap.pages import DEFAULT_DPI, pages_named


class TableError(ValueError):
    """A table scancap cannot use; the message names the file, the line and the reason."""


def read_page_table(
    table: Path,
    columns: Sequence[str],
    dpi: int = DEFAULT_DPI,
    choices: Mapping[str, Sequence[str]] | None = None,
    skip_blank: str | None = None,
) -> pd.DataFrame:
    """One row per page the table names, in its order: `line` (the file's line, the header
    being line 1), `name` (the path as written, "#page=N" added for each page of a document
    named whole), `page` (its `Page`) and `columns` (stripped text; a column in `choices`
    lower-cased, and one of its choices).

    Paths are absolute or relative to the table's folder (see `scancap.pages.pages_named`).
    Rows whose `skip_blank` column is empty are left out.
    A missing column, an empty cell, a value not among its choices or a path that names no
    page is a `TableError`.
    """
    table, choices = Path(table), choices or {}
    rows = []
    for line, row in _csv_rows(table, ["path", *columns]):
        if skip_blank and not row[skip_blank]:
            continue  # a row nobody filled in (a review file's unlabelled items)
        if missing := next((column for column in ["path", *columns] if not row[column]), None):
            raise TableError(f"{table} line {line}: empty {missing}")
        for column, allowed in choices.items():
            if row[column].lower() not in allowed:
                raise TableError(
                    f"{table} line {line}: {row['path']}: unknown {column} {row[column]!r} "
                    f"(one of {', '.join(allowed)})"
                )
            row[column] = row[column].lower()
        try:
            pages = pages_named(row["path"], table.parent, dpi)
        except ValueError as error:
            raise TableError(f"{table} line {line}: {error}") from None
        rows += [{"line": line, "name": p.name, "page": p, **row} for p in pages]
    if not rows:
        detail = (
            f"no row has a {skip_blank} (fill the {skip_blank} column)" if skip_blank else "no rows"
        )
        raise TableError(f"{table}: {detail}")
    return pd.DataFrame(rows, columns=["line", "name", "page", *columns])


def _csv_rows(table: Path, columns: list[str]) -> list[tuple[int, dict[str, str]]]:
    """(line, the named columns' stripped cells) per non-blank row of a UTF-8 CSV file."""
    try:
        with table.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            header = [name.strip() for name in reader.fieldnames or []]
            if missing := [column for column in columns if column not in header]:
                raise TableError(
                    f"{table}: no {' or '.join(missing)} column (the header must name "
                    f"{' and '.join(columns)})"
                )
            reader.fieldnames = header
            rows = []
            for row in reader:
                cells = {column: (row.get(column) or "").strip() for column in columns}
                rows.append((reader.line_num, cells))
            return rows
    except FileNotFoundError:
        raise TableError(f"{table}: no such file") from None
    except OSError as error:
        raise TableError(f"{table}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise TableError(f"{table}: not a UTF-8 text file") from None
    except csv.Error as error:
        raise TableError(f"{table} line {reader.line_num}: {error}") from None
