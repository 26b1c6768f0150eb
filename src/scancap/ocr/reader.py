"""The pipeline's OCR stage: which pages are read, on worker threads, and what happens when
Tesseract is missing."""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from scancap.ocr.engine import OcrError, PageText, read_page, tesseract_problem

if TYPE_CHECKING:
    from scancap.config import RunConfig

TEXT_SUBTYPE = "text"


class TextReader:
    """Reads the pages `RunConfig.ocr` asks for, each in a Tesseract process started from a
    worker thread (the thread only waits, so the GIL is free for the other stages)."""

    def __init__(self, config: RunConfig, available: bool) -> None:
        self.config, self.available = config, available
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="ocr")

    @classmethod
    def start(cls, config: RunConfig) -> TextReader:
        """A reader; where Tesseract cannot run, one line says so and text pages stay unread."""
        problem = tesseract_problem(config.ocr_languages) if config.ocr != "off" else ""
        if problem:
            print(f"note: text pages will not be read: {problem}", file=sys.stderr)
        return cls(config, available=config.ocr != "off" and not problem)

    def wants(self, is_photo: bool | None, subtype: str) -> bool:
        """Text pages by default; every non-photo with ocr = "all-non-photos"."""
        if not self.available or is_photo:
            return False
        return subtype == TEXT_SUBTYPE or self.config.ocr == "all-non-photos"

    def submit(self, image: np.ndarray, dpi: float | None) -> Future:
        """Start reading the full-resolution page; the future gives a PageText or the reason."""
        return self._pool.submit(self._read, image, dpi)

    def _read(self, image: np.ndarray, dpi: float | None) -> PageText | str:
        config = self.config
        try:
            return read_page(image, config.ocr_languages, config.ocr_time_limit,
                             config.searchable_pdf, dpi=dpi)  # fmt: skip
        except OcrError as error:
            return str(error)
        except (ValueError, MemoryError, OSError) as error:
            return f"failed ({error})"

    def close(self) -> None:
        self._pool.shutdown(wait=True)
