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
MAX_WORD_WIDTH = 12  # a joined-up handwritten word is one mark up to this many heights wide
LETTER_WIDTH = 0.6  # a wide mark counts as its width over this many heights in letters
MAX_STROKE = 0.25  # a letter's half stroke width at most this fraction of its height
PAPER_CONTRAST = 5.0  # marks darker than their ground by this many of its standard deviations


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
    flat = flatten_background(gray)
    ink = ink_mask(flat)
    total = int(np.count_nonzero(ink))
    if total == 0:
        return TextPresence(0, 0.0, 0.0)
    boxes, areas, thickness = letter_boxes(ink)
    lines, letter_ink, heights = text_lines(boxes, areas, thickness, flat, ink)
    height = float(np.median(heights)) / scale if heights else 0.0
    return TextPresence(lines, round(letter_ink / total, 4), round(height, 1))


def ink_mask(flat: np.ndarray) -> np.ndarray:
    """Dark marks (1) on the page's background (0): Otsu's threshold on the page divided by
    its background (`flatten_background`), so yellowed paper and uneven light are not ink."""
    threshold, ink = cv2.threshold(flat, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if flat.min() == flat.max() or threshold > 250:  # a blank page: no mark is darker
        return np.zeros_like(flat)
    return ink


def letter_boxes(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, w, h), pixel counts and thickness of the ink components shaped like letters or
    joined-up words: of letter height, at most `MAX_WORD_WIDTH` heights wide, neither a solid
    block nor a thin frame. A component's thickness is its deepest pixel's distance to the
    ground over its height: half a stroke width for a letter, about half the height for a
    blot or a stone."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    fill = area / np.maximum(w * h, 1)
    letters = (
        (h >= MIN_LETTER) & (h <= MAX_LETTER) & (w <= MAX_WORD_WIDTH * h) & (w >= 1)
        & (fill > 0.08) & (fill < 0.95)
    )  # fmt: skip
    depth = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    deepest = np.zeros(count, np.float32)
    np.maximum.at(deepest, labels.ravel(), depth.ravel())
    thickness = deepest[1:] / np.maximum(h, 1)
    return np.stack([x, y, w, h], axis=1)[letters], area[letters], thickness[letters]


def on_paper(flat: np.ndarray, ink: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the marks in `box` (x0, y0, x1, y1) stand on an even ground, as print and
    writing do: the ground's grey levels vary little against the marks' contrast (a painting's
    brush strokes and a photo's texture vary as much as the marks)."""
    x0, y0, x1, y1 = box
    region, marks = flat[y0:y1, x0:x1], ink[y0:y1, x0:x1].astype(bool)
    if marks.all() or not marks.any():
        return False
    ground, strokes = region[~marks].astype(np.float32), region[marks].astype(np.float32)
    contrast = float(np.median(ground) - np.median(strokes))
    return contrast > PAPER_CONTRAST * float(ground.std()) + 1.0


def text_lines(
    boxes: np.ndarray,
    areas: np.ndarray,
    thickness: np.ndarray,
    flat: np.ndarray,
    ink: np.ndarray,
) -> tuple[int, int, list[float]]:
    """Lines of letters: the letters' boxes smeared along the line; a smear holding at least
    `MIN_LETTERS_PER_LINE` letters whose heights agree, on an even ground, is a text line.
    Returns the number of lines, the ink in their letters and their letters' heights."""
    if len(boxes) < MIN_LETTERS_PER_LINE:
        return 0, 0, []
    shape = ink.shape
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
        kept = boxes[members][agree]
        letters = np.maximum(1.0, kept[:, 2] / (LETTER_WIDTH * median)).sum()
        if len(kept) < 2 or letters < MIN_LETTERS_PER_LINE:
            continue
        thin = np.median(thickness[members][agree]) <= MAX_STROKE
        if thin and on_paper(flat, ink, _line_box(kept, shape)):
            lines += 1
            letter_ink += int(areas[members][agree].sum())
            heights += line_heights[agree].tolist()
    return lines, letter_ink, heights


def _line_box(boxes: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The letters' bounding box, widened by half a letter height on every side."""
    margin = int(np.median(boxes[:, 3]) // 2)
    x0, y0 = boxes[:, 0].min() - margin, boxes[:, 1].min() - margin
    x1 = (boxes[:, 0] + boxes[:, 2]).max() + margin
    y1 = (boxes[:, 1] + boxes[:, 3]).max() + margin
    return max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)
