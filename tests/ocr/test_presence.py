"""The text check on real images: lines of letters on text pages, none on photos, paintings
and drawings; a page with enough lines is read whatever the subtype head called it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scancap.config import RunConfig
from scancap.io import load_image
from scancap.ocr import reader
from scancap.ocr.engine import tesseract_problem
from scancap.ocr.presence import text_presence
from scancap.ocr.reader import MIN_TEXT_LINES, TextReader
from scancap.pipeline.compose import Result

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
DOCBANK = (
    "text_DocBank_samples_DocBank_samples_116.tar_1606.06142.gz_news_portal_art_19_normal_7_ori.jpg"
)
PICTURES = sorted(
    p.name for p in SAMPLES.iterdir() if p.name.startswith(("photo_", "painting_", "sketch_"))
)


@pytest.mark.parametrize("name", ["text_596.jpg", DOCBANK])
def test_a_text_page_has_many_lines_that_hold_its_ink(name: str) -> None:
    found = text_presence(load_image(SAMPLES / name))
    assert found.lines >= 2 * MIN_TEXT_LINES and found.ink_share > reader.TEXT_DOMINATES
    assert 4 <= found.letter_height <= 40  # pixels of the page's own size


@pytest.mark.parametrize("name", PICTURES)
def test_photos_paintings_and_sketches_have_no_text_lines(name: str) -> None:
    assert text_presence(load_image(SAMPLES / name)).lines < MIN_TEXT_LINES


def test_a_blank_or_flat_page_has_no_lines() -> None:
    for page in (np.full((800, 600, 3), 235, np.uint8), np.zeros((40, 40), np.uint8)):
        found = text_presence(page)
        assert found.lines == 0 and found.ink_share == 0.0 and found.letter_height == 0.0


def test_a_large_page_is_looked_at_reduced_and_gives_the_same_lines() -> None:
    page = load_image(SAMPLES / "text_596.jpg")
    large = np.repeat(np.repeat(page, 3, axis=0), 3, axis=1)  # 3,072 px high: looked at reduced
    found, original = text_presence(large), text_presence(page)
    assert abs(found.lines - original.lines) <= 0.2 * original.lines
    assert found.letter_height == pytest.approx(3 * original.letter_height, rel=0.35)


@pytest.mark.skipif(bool(tesseract_problem()), reason=tesseract_problem())
def test_a_page_with_lines_is_read_whatever_its_subtype_and_becomes_a_text_page() -> None:
    text_reader = TextReader.start(RunConfig())
    try:
        page = load_image(SAMPLES / DOCBANK)
        reading = text_reader.submit(page, None, "schematic").result()
        assert reading.text is not None and "New York Times" in reading.text.text
        result = Result("page.jpg", subtype="schematic")
        result.set_reading(reading)
        assert result.subtype == "text" and result.text_lines == reading.presence.lines
        assert "the subtype head said schematic" in result.notes and result.title
        painting = load_image(SAMPLES / "painting_Alfred_Sisley_0000.jpg")
        unread = text_reader.submit(painting, None, "painting").result()
        assert unread.text is None and unread.presence.lines < MIN_TEXT_LINES
        result = Result("painting.jpg", subtype="painting")
        result.set_reading(unread)
        assert result.subtype == "painting" and result.text == "" and result.notes == ""
    finally:
        text_reader.close()
