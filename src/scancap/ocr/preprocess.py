"""What a scanned text page may need before Tesseract reads it: grey levels, straight lines,
an even background, black and white. Plain functions on uint8 arrays. Tesseract binarises
internally with one global threshold; `reports/ocr.md` measures which of these steps help it.
"""

from __future__ import annotations

import cv2
import numpy as np

SKEW_SEARCH_DEGREES = 5.0  # scanners feed pages a few degrees off, rarely more
SKEW_WIDTH = 800  # pixels wide the skew is estimated at: lines stay lines, search stays fast
MIN_INK = 0.002  # share of dark pixels below which a page has no lines to straighten
MIN_SIDE = 32  # pixels: smaller pages are read as they are
BACKGROUND_SCALE = 16  # the background is estimated at 1/16 of the page size
BINARIZE_BLOCK = 51  # pixels: a few text lines at 300 dpi


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luminance of an (H, W, 3) or (H, W) uint8 image."""
    _require_uint8(image)
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def estimate_skew(gray: np.ndarray) -> float:
    """The angle (degrees, counter-clockwise) that makes the text lines horizontal: the one
    whose row profile of ink is sharpest, searched coarse then fine within ±5°. A blank or
    tiny page, or one whose profile no angle sharpens, is left as it is (0)."""
    _require_uint8(gray)
    if min(gray.shape) < MIN_SIDE:
        return 0.0
    scale = min(1.0, SKEW_WIDTH / gray.shape[1])
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    threshold, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    if not MIN_INK < ink.mean() < 0.5 or small.min() == small.max():
        return 0.0
    ink = ink.astype(np.float32)

    def sharpness(angle: float) -> float:
        profile = rotate(ink, angle, border=0.0).sum(axis=1)
        return float(np.square(np.diff(profile)).sum())

    coarse = np.arange(-SKEW_SEARCH_DEGREES, SKEW_SEARCH_DEGREES + 1e-6, 0.5)
    scores = [sharpness(angle) for angle in coarse]
    if max(scores) <= 1.01 * sharpness(0.0):
        return 0.0  # straight already, or nothing that lines up
    best = coarse[int(np.argmax(scores))]
    low, high = max(-SKEW_SEARCH_DEGREES, best - 0.5), min(SKEW_SEARCH_DEGREES, best + 0.5)
    fine = np.arange(low, high + 1e-6, 0.05)
    return round(float(max(fine, key=sharpness)), 2)


def deskew(gray: np.ndarray, angle: float) -> np.ndarray:
    """`gray` turned by `angle` degrees about its centre, the same size (a page's margins take
    the corners), the uncovered corners filled with the page's background."""
    if abs(angle) < 0.05:
        return gray
    background = float(np.percentile(gray[::8, ::8], 90))
    return rotate(gray, angle, border=background)


def flatten_background(gray: np.ndarray) -> np.ndarray:
    """`gray` divided by its estimated background (ink removed by a closing, at 1/16 size),
    so uneven lighting and yellowed paper become white; ink keeps its contrast."""
    _require_uint8(gray)
    height, width = gray.shape
    size = (max(1, width // BACKGROUND_SCALE), max(1, height // BACKGROUND_SCALE))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel)
    background = cv2.GaussianBlur(background, (0, 0), 3)
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    flat = gray.astype(np.float32) / np.maximum(background.astype(np.float32), 1.0)
    return np.clip(flat * 255.0, 0, 255).astype(np.uint8)


def binarize(gray: np.ndarray, block: int = BINARIZE_BLOCK, offset: float = 15.0) -> np.ndarray:
    """Black ink (0) on white (255): a pixel is ink when it is `offset` grey levels darker
    than the Gaussian-weighted mean of its `block`-pixel neighbourhood (a local threshold, for
    pages whose contrast varies)."""
    _require_uint8(gray)
    return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY,
                                 block, offset)  # fmt: skip


def rotate(image: np.ndarray, angle: float, border: float) -> np.ndarray:
    """`image` turned by `angle` degrees (counter-clockwise) about its centre, same size and
    dtype, bilinear, uncovered pixels set to `border`."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)  # fmt: skip


def _require_uint8(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) page, not {image.dtype} "
                         f"{image.shape}")  # fmt: skip
