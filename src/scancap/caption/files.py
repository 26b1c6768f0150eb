"""Caption pages read from files: one row per page, a bad file reported and never fatal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from scancap.batch import load_batches
from scancap.pages import Page

CSV_COLUMNS = ["path", "caption", "skipped", "error"]
# Per decoded image: "" to caption it, else why not (the command line passes the classifier's
# verdict: a chart captioned as "a baby playing with a ball" helps nobody).
PhotoCheck = Callable[[list[np.ndarray]], list[str]]
# TensorFlow loads with the captioner, in `caption_files`, so `scancap --help` stays fast.


def caption_files(
    pages: list[Page],
    model_dir: Path | None,
    beam: int,
    batch_size: int,
    max_pixels: int,
    check: PhotoCheck | None = None,
) -> Iterator[tuple[Page, dict[str, str]]]:
    """(page, CSV row) per page in input order; a bad file gets its error, the rest go on.

    Images are decoded one batch at a time, so memory does not grow with the number of files.
    With `check`, images it turns down are not captioned: their row says why (`skipped`).
    """
    from scancap.caption.model import Captioner

    captioner = Captioner.load(model_dir)
    for batch in load_batches(pages, batch_size, max_pixels):
        images = [item for _, item in batch if isinstance(item, np.ndarray)]
        reasons = check(images) if check and images else [""] * len(images)
        kept = [image for image, reason in zip(images, reasons, strict=True) if not reason]
        captions = iter(captioner.caption_images(kept, beam=beam))
        verdicts = iter(reasons)
        for page, item in batch:
            row = {"path": page.name, "caption": "", "skipped": "", "error": ""}
            if not isinstance(item, np.ndarray):
                row["error"] = item.reason
            elif reason := next(verdicts):
                row["skipped"] = reason
            else:
                row["caption"] = next(captions)[0]
            yield page, row


def caption_summary(rows: list[dict[str, str]], out: str | None) -> str:
    """What a run did, counted: "captioned 4/6 images (1 skipped, 1 unreadable) -> out.csv"."""
    skipped = sum(bool(row["skipped"]) for row in rows)
    failures = sum(bool(row["error"]) for row in rows)
    captioned = len(rows) - skipped - failures
    counts = f" ({skipped} skipped, {failures} unreadable)" if skipped or failures else ""
    target = f" -> {out}" if out else ""
    return f"captioned {captioned}/{len(rows)} images{counts}{target}"
