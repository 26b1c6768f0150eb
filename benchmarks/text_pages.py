"""Real full-resolution pages for the text check: fetch them, and choose and measure the check.

    .venv/bin/python benchmarks/text_pages.py build [--mirrors DIR] [--data DIR]
    .venv/bin/python benchmarks/text_pages.py study [--data DIR] [--out-report reports/ocr_text_check.md]

`build` copies every file listed in `benchmarks/data/text_pages.json` (repository, commit,
path, licence) from a local copy of its repository into `DATA/text_pages/<owner+name>/`, the
path's folders joined by "__". A repository's copy is looked for in `--mirrors` as
`<owner>+<name>/repo` (a bare git directory, as the development machines keep them) and is
otherwise cloned there from GitHub; every file is read at the listed commit and its size
checked. Nothing is copied into this repository.

`study` runs the text check (`scancap.ocr.presence`) and the classifier on every page, chooses
`MIN_TEXT_LINES` and `TEXT_DOMINATES` on the labels' select part by the rule written in
`benchmarks/labels/README.md`, and reports them on the report part.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from scancap.paths import data_dir

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "benchmarks" / "data" / "text_pages.json"
FOLDER = "text_pages"


def local_name(entry: dict[str, Any]) -> Path:
    """Where a listed file lives under the data folder."""
    owner_name = entry["repository"].replace("/", "+")
    return Path(FOLDER) / owner_name / entry["path"].replace("/", "__")


def repository_copy(repository: str, mirrors: Path) -> Path:
    """A bare git copy of `repository`: the mirror's, else a fresh clone beside the mirrors."""
    git = mirrors / repository.replace("/", "+") / "repo"
    if (git / ".git").is_dir():  # a copy with its git directory inside
        return git / ".git"
    if not git.exists():
        git.parent.mkdir(parents=True, exist_ok=True)
        url = f"https://github.com/{repository}.git"
        subprocess.run(["git", "clone", "--bare", "--quiet", url, str(git)], check=True)
    return git


def build(mirrors: Path, data: Path) -> int:
    """Copy every listed file; returns how many were written (existing ones are checked)."""
    entries = json.loads(MANIFEST.read_text())
    written = 0
    for entry in entries:
        target = data / local_name(entry)
        if target.exists() and target.stat().st_size == entry["bytes"]:
            continue
        git = repository_copy(entry["repository"], mirrors)
        blob = subprocess.run(
            ["git", f"--git-dir={git}", "show", f"{entry['commit']}:{entry['path']}"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        if len(blob) != entry["bytes"]:
            sys.exit(f"{entry['repository']}:{entry['path']}: {len(blob)} bytes, "
                     f"{entry['bytes']} listed")  # fmt: skip
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        written += 1
    print(f"{len(entries)} files listed, {written} written under {data / FOLDER}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="copy the listed files into the data folder")
    build_parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    build_parser.add_argument("--data", type=Path, default=data_dir())
    args = parser.parse_args()
    if args.command == "build":
        build(args.mirrors, args.data)


if __name__ == "__main__":
    main()
