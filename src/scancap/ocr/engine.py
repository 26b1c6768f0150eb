"""Text pages read by Tesseract 5, through pytesseract.

Why pytesseract rather than tesserocr: it runs the `tesseract` program of the system's package
(Debian's `tesseract-ocr`, with its language data), so nothing is compiled against a particular
libtesseract; each page is a process of its own, so the per-page time limit really stops the
work (the process is killed) and a page that crashes Tesseract is one row's error, never the
batch's. The price is starting Tesseract and loading its models for each page, a small share of
a 300-dpi page's time (`reports/ocr.md`).

A page is read at full resolution: grey levels, straightened (`preprocess`), and Tesseract
writes its text, its words with their confidences and, when asked, a PDF of the page with an
invisible text layer, all in one pass.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytesseract

from scancap.batch import first_line
from scancap.config import RunConfig
from scancap.ocr.preprocess import (
    binarize,
    deskew,
    estimate_skew,
    flatten_background,
    to_gray,
)

DEFAULT_LANGUAGES = RunConfig.model_fields["ocr_languages"].default
PREPROCESSING = ("none", "deskew", "deskew+flatten", "deskew+flatten+binarize")  # cheap first
DEFAULT_PREPROCESSING = "deskew+flatten"  # chosen by its rule in reports/ocr.md
INSTALL_HINT = (
    "install Tesseract 5 with its language data: apt-get install tesseract-ocr "
    "tesseract-ocr-eng tesseract-ocr-fra tesseract-ocr-deu tesseract-ocr-script-frak"
)
# Function words that tell English from French prose (the languages scancap installs).
_FUNCTION_WORDS = {
    "eng": frozenset(("the", "and", "of", "to", "in", "is", "was", "that", "it", "with", "for",
                      "as", "his", "her", "he", "she", "not", "be", "at", "by", "on", "had",
                      "have", "which", "this", "from", "but", "they", "you")),
    "fra": frozenset(("le", "la", "les", "et", "des", "du", "un", "une", "est", "que", "qui",
                      "dans", "pour", "pas", "sur", "au", "aux", "il", "elle", "ne", "se", "ce",
                      "son", "sa", "avec", "par", "plus", "était")),
    "deu": frozenset(("der", "die", "das", "und", "ist", "nicht", "ein", "eine", "zu", "den",
                      "von", "mit", "sich", "des", "auf", "für", "dem", "auch", "es", "wir",
                      "wird", "wurde", "sind", "aus", "bei", "nach", "daß", "dass", "war")),
}  # fmt: skip
# A full page's body text (10-12 pt) is about 10 px high at 100 dpi, about where Tesseract stops
# finding words: a letter or A4 page scanned under this many pixels high is too small to read.
# (Measured on the samples' DocBank page: 458 words at 1,024 px, 137 garbled ones at 700, none
# at 550.)
MIN_PAGE_HEIGHT = 1100
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


class OcrError(RuntimeError):
    """Tesseract could not read a page (missing, timed out, failed): the reason, one line."""


@dataclass
class PageText:
    """What Tesseract read on one page."""

    text: str
    language: str  # "eng", "fra", "deu" or "" when the text is too short to tell
    confidence: float | None  # mean word confidence, 0-100; None without words
    seconds: float
    pdf: bytes | None = None  # the page with an invisible text layer, when asked
    note: str = ""  # why no text was read, when none was

    @property
    def title(self) -> str:
        """The first line with text: what a person would call the page."""
        return first_line(self.text)


@functools.cache
def tesseract_problem(languages: str = DEFAULT_LANGUAGES) -> str:
    """Why pages cannot be read here ("" when they can): no Tesseract, or a language missing."""
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return f"Tesseract is not installed ({INSTALL_HINT})"
    try:
        installed = installed_languages()
    except (subprocess.SubprocessError, OSError) as error:
        return f"Tesseract does not run ({first_line(str(error))})"
    missing = [name for name in languages.split("+") if name not in installed]
    if missing:
        return f"Tesseract has no {'+'.join(missing)} language data ({INSTALL_HINT})"
    # One page per worker thread: Tesseract's own OpenMP threads would only compete with them.
    # Set once, here, before any page is read (threads must not change the environment).
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    return ""


def installed_languages() -> set[str]:
    """The language data Tesseract lists, capitalised script models (Fraktur) included
    (pytesseract's own list keeps lower-case names only)."""
    listed = subprocess.run([pytesseract.pytesseract.tesseract_cmd, "--list-langs"],
                            capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    lines = (listed.stdout or listed.stderr).splitlines()
    return {line.strip() for line in lines[1:] if line.strip()}


def prepare(
    image: np.ndarray, preprocessing: str = DEFAULT_PREPROCESSING
) -> tuple[np.ndarray, float]:
    """The grey page Tesseract reads and the skew angle it was turned by."""
    gray = to_gray(image)
    if preprocessing == "none":
        return gray, 0.0
    angle = estimate_skew(gray)
    gray = deskew(gray, angle)
    if "flatten" in preprocessing:
        gray = flatten_background(gray)
    if "binarize" in preprocessing:
        gray = binarize(gray)
    return gray, angle


def read_page(
    image: np.ndarray,
    languages: str = DEFAULT_LANGUAGES,
    time_limit: float = 60.0,
    searchable_pdf: bool = False,
    preprocessing: str = DEFAULT_PREPROCESSING,
    dpi: float | None = None,
) -> PageText:
    """The text of a uint8 page at full resolution; OcrError says why it could not be read.
    `dpi`, where the file tells it, is the page's resolution for Tesseract and the size of the
    searchable PDF's page (else Tesseract estimates it from the size of the text)."""
    problem = tesseract_problem(languages)
    if problem:
        raise OcrError(problem)
    start = time.perf_counter()
    gray, _ = prepare(image, preprocessing)
    outputs = ["txt", "tsv"] + (["pdf"] if searchable_pdf else [])
    files = _run_tesseract(gray, languages, time_limit, outputs, dpi)
    confidences = _word_confidences(files["tsv"].decode("utf-8"))
    text = _tidy(files["txt"].decode("utf-8"))
    return PageText(
        text=text,
        language=detect_language(text),
        confidence=round(float(np.mean(confidences)), 2) if confidences else None,
        seconds=round(time.perf_counter() - start, 4),
        pdf=files.get("pdf"),
        note="" if text else no_text_note(gray.shape[0]),
    )


def no_text_note(height: int) -> str:
    """Why a page that was read gave no text: too few pixels high for its letters, or none."""
    if height < MIN_PAGE_HEIGHT:
        return (
            f"no text read: the page is {height:,} px high, too small to read (a full page "
            f"needs about {MIN_PAGE_HEIGHT:,} px, 100 dpi; 300 dpi is best): rescan it larger"
        )
    return "no text found on the page"


def _run_tesseract(
    gray: np.ndarray, languages: str, time_limit: float, outputs: list[str], dpi: float | None
) -> dict[str, bytes]:
    """One Tesseract process on `gray`, writing each of `outputs`; killed after `time_limit`."""
    config = " ".join(f"-c tessedit_create_{name}=1" for name in outputs)
    if dpi:
        config += f" --dpi {round(dpi)}"
    # One page per worker thread: Tesseract's own OpenMP threads would only compete with them.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    with tempfile.TemporaryDirectory(prefix="scancap-ocr-") as scratch:
        page = Path(scratch) / "page.jpg"
        page.write_bytes(_encode(gray))
        base = str(Path(scratch) / "out")
        try:
            pytesseract.pytesseract.run_tesseract(
                str(page), base, extension="", lang=languages, config=config, timeout=time_limit
            )
        except pytesseract.TesseractError as error:  # a RuntimeError too: caught first
            raise OcrError(f"Tesseract failed ({first_line(error.message)})") from error
        except RuntimeError as error:  # pytesseract's timeout
            if "timeout" not in str(error).lower():
                raise OcrError(first_line(str(error))) from error
            raise OcrError(f"timed out after {time_limit:g} s") from error
        except OSError as error:
            raise OcrError(f"Tesseract could not run ({first_line(str(error))})") from error
        return {name: Path(f"{base}.{name}").read_bytes() for name in outputs}


def _encode(gray: np.ndarray) -> bytes:
    """The page as Tesseract reads it: JPEG at quality 95, whatever the outputs, so that the
    text never depends on --searchable-pdf, whose PDF embeds this file as it is (an A4 page at
    300 dpi in well under 1 MB, where PNG of a noisy scan takes several)."""
    ok, encoded = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise OcrError("could not encode the page for Tesseract")
    return encoded.tobytes()


def _word_confidences(tsv: str) -> list[float]:
    """The confidence (0-100) of every recognised word in Tesseract's TSV output."""
    rows = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    return [
        float(row["conf"])
        for row in rows
        if row.get("level") == "5" and (row.get("text") or "").strip() and float(row["conf"]) >= 0
    ]


def _tidy(text: str) -> str:
    """Tesseract's text without its form feed and trailing blank lines."""
    lines = [line.rstrip() for line in text.replace("\f", "").splitlines()]
    return "\n".join(lines).strip("\n")


def detect_language(text: str) -> str:
    """ "eng", "fra" or "deu", by which language's function words the text uses most; "" when
    it has fewer than five of any, or when the runner-up is within a factor 1.5."""
    words = [word.lower() for word in _WORD.findall(text)]
    counts = sorted(((sum(word in vocabulary for word in words), name)
                     for name, vocabulary in _FUNCTION_WORDS.items()), reverse=True)  # fmt: skip
    (count, language), (runner_up, _) = counts[0], counts[1]
    return language if count >= 5 and count > 1.5 * runner_up else ""
