"""Restore pages read from files into a folder, with one row per page of what was measured
and decided; a bad file is reported and never stops the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from scancap.batch import error_reason, load_batches, report_error
from scancap.config import DEFAULT_PIXEL_BUDGET
from scancap.io import ImageLoadError, output_path, save_image
from scancap.pages import Page, page_metadata
from scancap.restore.auto import RestoreRecord
from scancap.restore.workers import RestoreWorkers


def restore_files(
    pages: list[Page],
    out_dir: Path,
    mode: str,
    strength: float,
    workers: int,
    time_limit: float,
    max_pixels: int,
    quiet: bool,
) -> list[dict[str, object]]:
    """Restore every page into `out_dir` under its relative path; one row per page, in order:
    path, output, error and the restoration's record."""
    inputs = {page.file for page in pages}
    restorer = RestoreWorkers(mode, strength, workers, time_limit, DEFAULT_PIXEL_BUDGET)
    rows = []
    try:
        with tqdm(total=len(pages), desc="restore", unit="img", disable=quiet) as bar:
            batches = load_batches(
                pages, 2 * workers, max_pixels, workers, pixel_budget=DEFAULT_PIXEL_BUDGET
            )
            for batch in batches:
                images = [item for _, item in batch if isinstance(item, np.ndarray)]
                outcomes = iter(restorer.collect(restorer.submit(images)))
                for page, item in batch:
                    outcome = next(outcomes) if isinstance(item, np.ndarray) else item
                    rows.append(restored_row(page, outcome, out_dir, inputs))
                    if rows[-1]["error"]:
                        report_error(page, rows[-1]["error"])
                    bar.update()
    finally:
        restorer.close()
    return rows


def restored_row(
    page: Page,
    outcome: tuple[np.ndarray, RestoreRecord] | str | ImageLoadError,
    out_dir: Path,
    inputs: set[Path],
) -> dict[str, object]:
    """The CSV row of one page: where its restoration went, or why there is none."""
    row: dict[str, object] = {"path": page.name, "output": "", "error": ""}
    if isinstance(outcome, ImageLoadError | str):
        return row | {"error": error_reason(outcome) if isinstance(outcome, Exception) else outcome}
    restored, record = outcome
    try:
        target = output_path(out_dir, page.output_name())
        save_image(target, restored, inputs=inputs, metadata=page_metadata(page))
    except (OSError, ValueError) as error:
        return row | {"error": f"could not write the output: {error_reason(error)}"}
    return row | {"output": str(target.relative_to(out_dir))} | record.flat()
