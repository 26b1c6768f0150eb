"""The pipeline's OCR stage: which pages are read, on worker threads, and what happens when
Tesseract is missing or a page cannot be read."""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from scancap.batch import first_line
from scancap.ocr.engine import OcrError, PageText, read_page, tesseract_problem
from scancap.pages import Page, page_dpi

if TYPE_CHECKING:
    from scancap.config import RunConfig

TEXT_SUBTYPE = "text"
# Below this a recorded resolution is a default (72 and 96 dpi: screens, cameras), not the
# scan's: Tesseract estimates the resolution instead.
MIN_PLAUSIBLE_DPI = 100


def ocr_unavailable(config: RunConfig) -> bool:
    """Whether the pages `config` asks to read cannot be read here; if so, say why once."""
    problem = tesseract_problem(config.ocr_languages) if config.ocr != "off" else ""
    if problem:
        print(f"note: text pages will not be read: {problem}", file=sys.stderr)
    return bool(problem)


class TextReader:
    """Reads the pages `RunConfig.ocr` asks for, each in a Tesseract process started from a
    worker thread (the thread only waits, so the GIL is free for the other stages)."""

    def __init__(self, config: RunConfig, available: bool) -> None:
        self.config, self.available = config, available
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="ocr")

    @classmethod
    def start(cls, config: RunConfig) -> TextReader:
        """A reader; where Tesseract cannot run, one line says so and text pages stay unread."""
        return cls(config, available=config.ocr != "off" and not ocr_unavailable(config))

    def wants(self, is_photo: bool | None, subtype: str) -> bool:
        """Text pages by default; every non-photo with ocr = "all-non-photos"."""
        if not self.available or is_photo:
            return False
        return subtype == TEXT_SUBTYPE or self.config.ocr == "all-non-photos"

    def submit(self, image: np.ndarray, page: Page | None) -> Future:
        """Start reading the full-resolution page; the future gives a PageText or the reason.
        `page` (None for an array) gives the resolution its file records."""
        return self._pool.submit(self._read, image, page)

    def _read(self, image: np.ndarray, page: Page | None) -> PageText | str:
        config = self.config
        try:
            dpi = page_dpi(page) if page is not None else None  # read here: off the main thread
            dpi = dpi if dpi and dpi >= MIN_PLAUSIBLE_DPI else None
            return read_page(image, config.ocr_languages, config.ocr_time_limit,
                             config.searchable_pdf, dpi=dpi)  # fmt: skip
        except OcrError as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - one page's failure is its row's, never the batch's
            return f"failed ({type(error).__name__}: {first_line(str(error))})"

    def close(self) -> None:
        """Stop: pages not started are dropped (an interrupted run redoes them)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
