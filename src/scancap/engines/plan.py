"""What a run has to do, the same for every engine: the pages under the inputs with their keys,
and why finished pages are processed again."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from scancap.pages import Page, list_pages, require_pages
from scancap.pipeline.compose import sha256_or_empty
from scancap.pipeline.provenance import Provenance


def list_run_inputs(
    inputs: list[str | Path], out: Path, pdf_dpi: float, required: bool = True
) -> tuple[list[Page], dict[Page, tuple[str, str]]]:
    """The pages to process (none under `out`: a rerun must not read its own outputs), each
    with its key (name, content hash of its file) in the record of finished items. Finding
    none is a FileNotFoundError when `required` (the Ray engine may have URIs besides)."""
    listed = require_pages(inputs, pdf_dpi) if required else list_pages(inputs, pdf_dpi)
    files = [page for page in listed if not _is_under(page.file, out)]
    digests = {file: sha256_or_empty(file) for file in dict.fromkeys(p.file for p in files)}
    return files, {page: (page.name, digests[page.file]) for page in files}


def warn_redone(count: int, out: Path | str, now: Provenance, before: Provenance | None) -> None:
    """Say on the terminal why finished images are processed again."""
    changes = now.changes_from(before) if before else ["settings of an earlier scancap"]
    tqdm.write(
        f"note: {out} holds {count} images finished with other settings or models "
        f"({'; '.join(changes) or 'unknown'}): processing them again",
        file=sys.stderr,
    )


def _is_under(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())
