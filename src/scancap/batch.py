"""Batches of decoded images for the neural stages, with per-file errors that never stop a run.

Every command that reads many files (classify, caption, run) goes through `load_batches`: a
worker thread decodes the next batch while the caller's model runs on this one (decoding and
TensorFlow both release the GIL), and a file that cannot be read becomes an `ImageLoadError`
in its slot instead of an exception.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TextIO, TypeVar

import numpy as np
from tqdm import tqdm

from scancap.io import DEFAULT_MAX_PIXELS, ImageLoadError
from scancap.pages import Page, as_page, load_page, page_pixels

Loaded = np.ndarray | ImageLoadError
T = TypeVar("T")


def error_reason(error: Exception) -> str:
    """The reason alone (ImageLoadError's message already repeats the file name)."""
    return getattr(error, "reason", None) or str(error)


def first_line(message: str) -> str:
    """A message's first non-empty line, for a one-line reason ("" for an empty message)."""
    return next((line.strip() for line in message.splitlines() if line.strip()), "")


def report_error(path: Path | Page | str, reason: str, file: TextIO | None = None) -> None:
    """One line on stderr (or `file`) per failed file, never a traceback."""
    tqdm.write(f"error: {path}: {reason}", file=file or sys.stderr)


def report_note(path: Path | Page | str, note: str, file: TextIO | None = None) -> None:
    """One line on stderr (or `file`) for an item that succeeded with something to say."""
    tqdm.write(f"note: {path}: {note}", file=file or sys.stderr)


def load_or_error(page: Page | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Loaded:
    """The page (or the image file) as uint8 RGB, or the reason it cannot be read."""
    page = as_page(page)
    try:
        return load_page(page, max_pixels=max_pixels)
    except ImageLoadError as error:
        return error
    except (OSError, ValueError) as error:  # e.g. a file that vanished since it was listed
        return ImageLoadError(str(page), error_reason(error))


def plan_batches(
    pages: Sequence[Page | Path], batch_size: int, pixel_budget: int | None = None
) -> list[list[Page | Path]]:
    """Consecutive batches of at most `batch_size` pages and, with a budget, at most
    `pixel_budget` decoded pixels (a page larger than the budget is a batch of its own)."""
    batches: list[list[Page | Path]] = []
    current: list[Page | Path] = []
    pixels = 0
    for page in pages:
        size = page_pixels(page) if pixel_budget else 0
        if current and (
            len(current) >= batch_size or (pixel_budget and pixels + size > pixel_budget)
        ):
            batches.append(current)
            current, pixels = [], 0
        current.append(page)
        pixels += size
    return [*batches, current] if current else batches


def load_batches(
    pages: Sequence[Page | Path],
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    workers: int = 1,
    decode: Callable[[Page | Path], T] | None = None,
    pixel_budget: int | None = None,
) -> Iterator[list[tuple[Page | Path, T | Loaded]]]:
    """(page, image or error) per page (or image file), in order, a batch at a time.

    A batch holds at most `batch_size` pages and, with `pixel_budget`, at most that many
    pixels (read from the headers), so memory follows pixels, not the number of images.
    Decoding runs `workers` threads ahead of the consumer by one batch, so memory holds at most
    two batches of decoded images however many files there are. `decode` replaces
    `load_or_error` (e.g. to time each file).
    """
    batches = plan_batches(pages, batch_size, pixel_budget)
    if not batches:
        return
    read = decode or partial(load_or_error, max_pixels=max_pixels)

    def decode_batch(batch: list[Page | Path]) -> list:
        return list(pool.map(read, batch))

    with ThreadPoolExecutor(max(1, workers)) as pool, ThreadPoolExecutor(1) as prefetch:
        pending = prefetch.submit(decode_batch, batches[0])
        for i, batch in enumerate(batches):
            loaded = pending.result()
            if i + 1 < len(batches):
                pending = prefetch.submit(decode_batch, batches[i + 1])
            yield list(zip(batch, loaded, strict=True))
