"""A crash-safe record of finished images, so a batch can be resumed.

Each processed input is stored once in an SQLite file in the output folder, keyed by
its content hash and relative path, with its manifest row as JSON, the names of its report
card's thumbnail files (so the report is rebuilt on resume without decoding the images again)
and the fingerprint of the settings and models that produced it. A rerun, or a run after a crash,
kill -9 or Ctrl-C, skips what is already there with the same fingerprint; SQLite's journal
makes each insert all-or-nothing, so a killed run never leaves half a row.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

LEDGER_FILE = "ledger.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS done (
    relative_path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    row TEXT NOT NULL,
    thumbnails TEXT NOT NULL DEFAULT '[]',
    settings TEXT NOT NULL DEFAULT ''
)
"""


class Ledger:
    """Finished rows of one output folder, keyed by relative path and content hash."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LEDGER_FILE
        self._connection = sqlite3.connect(self.path)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute(_SCHEMA)
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(done)")}
        if "settings" not in columns:  # a ledger written before settings were recorded
            self._connection.execute(
                "ALTER TABLE done ADD COLUMN settings TEXT NOT NULL DEFAULT ''"
            )
        self._connection.commit()

    def finished(self, relative_path: str, sha256: str, settings: str = "") -> dict | None:
        """The stored row if this exact content was processed at this path with `settings`."""
        found = self._connection.execute(
            "SELECT row FROM done WHERE relative_path = ? AND sha256 = ? AND settings = ?",
            (relative_path, sha256, settings),
        ).fetchone()
        return json.loads(found[0]) if found else None

    def outdated(self, relative_path: str, sha256: str, settings: str) -> bool:
        """Whether this content was processed here, but with other settings or models."""
        found = self._connection.execute(
            "SELECT settings FROM done WHERE relative_path = ? AND sha256 = ?",
            (relative_path, sha256),
        ).fetchone()
        return found is not None and found[0] != settings

    def record(
        self,
        relative_path: str,
        sha256: str,
        row: dict[str, Any],
        thumbnails: Sequence[tuple[str, str]] = (),
        settings: str = "",
    ) -> None:
        """Store (or replace) one finished row and its thumbnails' (label, file) pairs;
        committed at once."""
        with self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO done (relative_path, sha256, row, thumbnails, settings) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    relative_path,
                    sha256,
                    json.dumps(row, default=_json_default),
                    json.dumps(list(thumbnails)),
                    settings,
                ),
            )

    def thumbnails(self, relative_path: str) -> list[tuple[str, str]]:
        """The (label, file) pairs of a row's thumbnails (none if the row is unknown)."""
        found = self._connection.execute(
            "SELECT thumbnails FROM done WHERE relative_path = ?", (relative_path,)
        ).fetchone()
        return [tuple(pair) for pair in json.loads(found[0])] if found else []

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every stored row, in path order."""
        for (row,) in self._connection.execute("SELECT row FROM done ORDER BY relative_path"):
            yield json.loads(row)

    def forget(self) -> None:
        """Drop every row (a --force run)."""
        with self._connection:
            self._connection.execute("DELETE FROM done")

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _json_default(value: object) -> object:
    """numpy scalars and paths in rows become plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
