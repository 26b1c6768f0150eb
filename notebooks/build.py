"""Build the notebooks from their percent-format sources, and optionally run them.

    python notebooks/build.py                 # notebooks/src/*.py -> notebooks/*.ipynb
    python notebooks/build.py 01 --execute    # build and run one, saving its outputs
    python notebooks/build.py --execute --fast

Sources are plain Python with `# %%` (code) and `# %% [markdown]` (markdown) cell
markers, so they diff and review like code. Notebooks only call the scancap package.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent
CELL_MARKER = re.compile(r"^# %%( \[markdown\])?\s*$", re.MULTILINE)


def parse_cells(source: str) -> list[nbformat.NotebookNode]:
    """Split a percent-format script into notebook cells."""
    markers = list(CELL_MARKER.finditer(source))
    cells = []
    for marker, following in zip(markers, markers[1:] + [None], strict=False):
        body = source[marker.end() : following.start() if following else len(source)].strip("\n")
        if marker.group(1):
            text = "\n".join(re.sub(r"^# ?", "", line) for line in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif body.strip():
            cells.append(nbformat.v4.new_code_cell(body))
    return cells


def build(source_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = parse_cells(source_path.read_text())
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return notebook


def execute(notebook: nbformat.NotebookNode, fast: bool, timeout: int = 7200) -> None:
    """Run every cell in notebooks/ with SCANCAP_FAST set; raises on the first error."""
    os.environ["SCANCAP_FAST"] = "1" if fast else "0"
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="prefixes of notebooks to build (default: all)")
    parser.add_argument("--execute", action="store_true", help="run the notebook and keep outputs")
    parser.add_argument("--fast", action="store_true", help="run in fast mode (SCANCAP_FAST=1)")
    args = parser.parse_args()
    for source_path in sorted((NOTEBOOKS / "src").glob("*.py")):
        if args.names and not any(source_path.stem.startswith(n) for n in args.names):
            continue
        notebook = build(source_path)
        if args.execute:
            execute(notebook, args.fast)
        target = NOTEBOOKS / f"{source_path.stem}.ipynb"
        nbformat.write(notebook, target)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
