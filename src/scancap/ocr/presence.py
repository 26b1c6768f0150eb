"""Whether a page bears text, found by looking for lines of letters rather than asked of the
subtype head: a cheap check on every non-photo, deciding which pages Tesseract reads.

Letters are the page's small dark marks of similar height; text is where several of them sit
side by side on a line. On a grey page with its background flattened, the ink's connected
components of letter size are smeared along the line (a horizontal closing as wide as a letter
gap) and each smear holding several letters of one height is a text line. The page's text
lines and the share of its ink they hold are what `TextPresence` reports: a page of prose is
mostly lines; a chart or a schematic has a few label lines among much other ink; a painting,
a sketch or a photo has none, or strays.

Plain functions on uint8 arrays; about 30-60 ms on a 300-dpi A4 page (measured in
`reports/ocr.md`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from scancap.ocr.preprocess import flatten_background, to_gray

WORK_SIDE = 2000  # pixels: the long side the check looks at (a 300-dpi A4 page at ~170 dpi)
MIN_LETTER, MAX_LETTER = 5, 90  # letter heights (pixels, at the working size) the check sees
MIN_LETTERS_PER_LINE = 5  # a line holds at least this many letters of one height
LINE_GAP = 1.2  # letters closer than this many letter heights belong to one line
HEIGHT_SPREAD = 0.45  # letters of one line: heights within this fraction of their median


@dataclass(frozen=True)
class TextPresence:
    """The text lines found on a page and the share of its ink they hold."""

    lines: int
    ink_share: float  # 0-1: ink in text lines over all the page's ink
    letter_height: float  # median letter height in the page's own pixels (0 without lines)


def text_presence(image: np.ndarray) -> TextPresence:
    """The text lines of a uint8 page (grey or RGB), at most `WORK_SIDE` pixels long."""
    gray = to_gray(image)
    scale = min(1.0, WORK_SIDE / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ink = ink_mask(gray)
    total = int(np.count_nonzero(ink))
    if total == 0:
        return TextPresence(0, 0.0, 0.0)
    boxes, areas = letter_boxes(ink)
    lines, letter_ink, heights = text_lines(boxes, areas, ink.shape)
    height = float(np.median(heights)) / scale if heights else 0.0
    return TextPresence(lines, round(letter_ink / total, 4), round(height, 1))


def ink_mask(gray: np.ndarray) -> np.ndarray:
    """Dark marks (1) on the page's flattened background (0): Otsu's threshold on the page
    divided by its background, so yellowed paper and uneven light do not become ink."""
    flat = flatten_background(gray)
    threshold, ink = cv2.threshold(flat, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if flat.min() == flat.max() or threshold > 250:  # a blank page: no mark is darker
        return np.zeros_like(gray)
    return ink


def letter_boxes(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y, w, h) and pixel counts of the ink components shaped like letters: of letter
    height, not much wider than tall (a few touching letters at most), neither a solid block
    nor a thin frame."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    fill = area / np.maximum(w * h, 1)
    letters = (
        (h >= MIN_LETTER) & (h <= MAX_LETTER) & (w <= 4 * h) & (w >= 1)
        & (fill > 0.08) & (fill < 0.95)
    )  # fmt: skip
    return np.stack([x, y, w, h], axis=1)[letters], area[letters]


def text_lines(
    boxes: np.ndarray, areas: np.ndarray, shape: tuple[int, int]
) -> tuple[int, int, list[float]]:
    """Lines of letters: the letters' boxes smeared along the line; a smear holding at least
    `MIN_LETTERS_PER_LINE` letters whose heights agree is a text line. Returns the number of
    lines, the ink in their letters and their letters' heights."""
    if len(boxes) < MIN_LETTERS_PER_LINE:
        return 0, 0, []
    canvas = np.zeros(shape, np.uint8)
    gap = max(3, int(LINE_GAP * np.median(boxes[:, 3])))
    for x, y, w, h in boxes:
        top = y + h // 4  # the letters' middles: lines above and below do not merge
        canvas[top : y + h - h // 4 + 1, x : x + w] = 1
    smeared = cv2.morphologyEx(canvas, cv2.MORPH_CLOSE, np.ones((1, gap), np.uint8))
    _, labels = cv2.connectedComponents(smeared, connectivity=4)
    centres = labels[boxes[:, 1] + boxes[:, 3] // 2, boxes[:, 0] + boxes[:, 2] // 2]
    lines, letter_ink, heights = 0, 0, []
    for label in np.unique(centres[centres > 0]):
        members = centres == label
        line_heights = boxes[members, 3].astype(float)
        median = np.median(line_heights)
        agree = np.abs(line_heights - median) <= HEIGHT_SPREAD * median
        if agree.sum() >= MIN_LETTERS_PER_LINE:
            lines += 1
            letter_ink += int(areas[members][agree].sum())
            heights += line_heights[agree].tolist()
    return lines, letter_ink, heights
