"""What a scanned text page needs before Tesseract reads it: grey levels, straight lines and
an even background. Plain functions on uint8 arrays; grey stays grey (Tesseract binarises
internally, and a searchable PDF shows the page as it was scanned, not as black and white).
"""

from __future__ import annotations

import cv2
import numpy as np

SKEW_SEARCH_DEGREES = 5.0  # scanners feed pages a few degrees off, rarely more
SKEW_WIDTH = 800  # pixels wide the skew is estimated at: lines stay lines, search stays fast
BACKGROUND_SCALE = 16  # the background is estimated at 1/16 of the page size


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 luminance of an (H, W, 3) or (H, W) uint8 image."""
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def estimate_skew(gray: np.ndarray) -> float:
    """The angle (degrees, counter-clockwise) that makes the text lines horizontal: the one
    whose row profile of ink is sharpest, searched coarse then fine within ±5°."""
    scale = min(1.0, SKEW_WIDTH / gray.shape[1])
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, ink = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    ink = ink.astype(np.float32)

    def sharpness(angle: float) -> float:
        profile = _rotate(ink, angle, border=0.0).sum(axis=1)
        return float(np.square(np.diff(profile)).sum())

    coarse = np.arange(-SKEW_SEARCH_DEGREES, SKEW_SEARCH_DEGREES + 1e-6, 0.5)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - 0.5, best + 0.5 + 1e-6, 0.05)
    return round(float(max(fine, key=sharpness)), 2)


def deskew(gray: np.ndarray, angle: float) -> np.ndarray:
    """`gray` rotated by `angle` degrees on a canvas large enough to keep every corner,
    filled with the page's background."""
    if abs(angle) < 0.05:
        return gray
    background = float(np.percentile(gray, 90))
    return _rotate(gray, angle, border=background, expand=True)


def flatten_background(gray: np.ndarray) -> np.ndarray:
    """`gray` divided by its estimated background (ink removed by a closing, at 1/16 size),
    so uneven lighting and yellowed paper become white; ink keeps its contrast."""
    height, width = gray.shape
    size = (max(1, width // BACKGROUND_SCALE), max(1, height // BACKGROUND_SCALE))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel)
    background = cv2.GaussianBlur(background, (0, 0), 3)
    background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
    flat = gray.astype(np.float32) / np.maximum(background.astype(np.float32), 1.0)
    return np.clip(flat * 255.0, 0, 255).astype(np.uint8)


def _rotate(image: np.ndarray, angle: float, border: float, expand: bool = False) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    size = (width, height)
    if expand:
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        size = (int(height * sin + width * cos + 0.5), int(height * cos + width * sin + 0.5))
        matrix[0, 2] += size[0] / 2 - width / 2
        matrix[1, 2] += size[1] / 2 - height / 2
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)  # fmt: skip
