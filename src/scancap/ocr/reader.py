"""The pipeline's OCR stage: which pages are read, on worker threads, and what happens when
Tesseract is missing or a page cannot be read.

Which pages: every non-photo is looked at for lines of text (`scancap.ocr.presence`, cheap);
a page the subtype head calls text is read, and so is any other non-photo with at least
`MIN_TEXT_LINES` lines; where text lines hold at least `TEXT_DOMINATES` of a page's ink, the
page is a text page whatever the subtype head said. Both thresholds were chosen on the select
part of 186 labelled real pages and pictures by a rule written first
(`reports/ocr_text_check.md`, `benchmarks/text_pages.py study`)."""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from scancap.batch import first_line
from scancap.ocr.engine import OcrError, PageText, read_page, tesseract_problem
from scancap.ocr.presence import TextPresence, text_presence

if TYPE_CHECKING:
    from scancap.config import RunConfig

TEXT_SUBTYPE = "text"
# Below this a recorded resolution is a default (72 and 96 dpi: screens, cameras), not the
# scan's: Tesseract estimates the resolution instead.
MIN_PLAUSIBLE_DPI = 100
MIN_TEXT_LINES = 16  # a non-photo with this many text lines is read whatever its subtype
TEXT_DOMINATES = 0.2  # share of the ink in text lines from which a page is a text page


@dataclass
class Reading:
    """What the reader made of a page: its text (None where it was not read), why it could
    not be read, and what the text check found."""

    text: PageText | None = None
    error: str = ""
    presence: TextPresence | None = None

    @property
    def text_dominates(self) -> bool:
        return self.presence is not None and self.presence.ink_share >= TEXT_DOMINATES


def is_read(subtype: str, lines: int, min_lines: int = MIN_TEXT_LINES) -> bool:
    """Whether the default `ocr = "text"` reads a non-photo: called text by the subtype head,
    or with at least `min_lines` text lines."""
    return subtype == TEXT_SUBTYPE or lines >= min_lines


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

    def wants(self, is_photo: bool | None) -> bool:
        """Every non-photo is looked at (photos are captioned, never read)."""
        return self.available and not is_photo

    def submit(self, image: np.ndarray, dpi: float | None, subtype: str) -> Future:
        """Look for text on the full-resolution page and read it if it has some (or if
        `ocr = "all-non-photos"`); the future gives a `Reading`. `dpi`: the resolution the
        page's file records, if any."""
        return self._pool.submit(self._read, image, dpi, subtype)

    def _read(self, image: np.ndarray, dpi: float | None, subtype: str) -> Reading:
        config = self.config
        try:
            presence = text_presence(image)
            if config.ocr != "all-non-photos" and not is_read(subtype, presence.lines):
                return Reading(presence=presence)
            dpi = dpi if dpi and dpi >= MIN_PLAUSIBLE_DPI else None
            text = read_page(image, config.ocr_languages, config.ocr_time_limit,
                             config.searchable_pdf, dpi=dpi)  # fmt: skip
            return Reading(text, presence=presence)
        except OcrError as error:
            return Reading(error=str(error))
        except Exception as error:  # noqa: BLE001 - one page's failure is its row's, never the batch's
            return Reading(error=f"failed ({type(error).__name__}: {first_line(str(error))})")

    def close(self) -> None:
        """Stop: pages not started are dropped (an interrupted run redoes them)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
