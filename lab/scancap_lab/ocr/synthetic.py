"""Pages whose text is known, for measuring OCR: prose rendered like a printed page at 300 dpi,
then degraded like a scan. Used by `benchmarks/ocr.py` and the tests.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from scancap.ocr.preprocess import rotate

A4_INCHES = (8.27, 11.69)
MARGIN_INCHES = 1.0
FONTS = {  # matplotlib's own fonts: present wherever scancap is installed
    "DejaVu Serif": "DejaVuSerif.ttf",
    "DejaVu Sans": "DejaVuSans.ttf",
    "STIX (Times-like)": "STIXGeneral.ttf",
    "DejaVu Sans Mono": "DejaVuSansMono.ttf",
}
DEGRADATIONS = ("clean", "noise", "blur", "skew", "jpeg", "lighting", "scan")


def font_path(name: str) -> Path:
    """The TrueType file of one of `FONTS`, from matplotlib's data."""
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONTS[name]


def render_page(
    paragraphs: list[str], font: str, points: float = 11.0, dpi: int = 300
) -> tuple[np.ndarray, str]:
    """An A4 page (H, W) uint8, black text on white, and the text exactly as laid out on it
    (its line breaks included). Paragraphs are added until the page is full."""
    width, height = (round(side * dpi) for side in A4_INCHES)
    margin = round(MARGIN_INCHES * dpi)
    typeface = ImageFont.truetype(str(font_path(font)), round(points * dpi / 72))
    advance = typeface.getlength("abcdefghijklmnopqrstuvwxyz") / 26
    columns = int((width - 2 * margin) / advance)
    line_height = round(points * dpi / 72 * 1.35)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    lines: list[str] = []
    y = margin
    for paragraph in paragraphs:
        wrapped = textwrap.wrap(paragraph, columns)
        while wrapped and draw.textlength(wrapped[0], font=typeface) > width - 2 * margin:
            columns -= 1  # a wide font: narrow the column until every line fits
            wrapped = textwrap.wrap(paragraph, columns)
        if y + line_height * len(wrapped) > height - margin:
            break
        for line in wrapped:
            draw.text((margin, y), line, fill=0, font=typeface)
            y += line_height
        lines += [*wrapped, ""]
        y += line_height // 2
    return np.asarray(page), "\n".join(lines).strip()


def degrade(page: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """`page` as a scanner or a camera might give it back, grey uint8.

    noise: Gaussian σ = 12 grey levels; blur: Gaussian σ = 1.2 px; skew: turned 3°; jpeg:
    quality 30; lighting: brightness falling from 100% to 55% across the page and yellowed
    paper; scan: all of these, the skew drawn from ±3°.
    """
    rng = np.random.default_rng(seed)
    if kind == "clean":
        return page
    if kind == "scan":
        image = _lighting(page)
        image = _skew(image, float(rng.uniform(-3, 3)))
        image = cv2.GaussianBlur(image, (0, 0), 1.0)
        return _jpeg(_noise(image, 10.0, rng), 50)
    return {
        "noise": lambda: _noise(page, 12.0, rng),
        "blur": lambda: cv2.GaussianBlur(page, (0, 0), 1.2),
        "skew": lambda: _skew(page, 3.0),
        "jpeg": lambda: _jpeg(page, 30),
        "lighting": lambda: _lighting(page),
    }[kind]()


def _noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _skew(image: np.ndarray, degrees: float) -> np.ndarray:
    return rotate(image, degrees, border=255.0)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    _, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def _lighting(image: np.ndarray) -> np.ndarray:
    light = np.linspace(1.0, 0.55, image.shape[1], dtype=np.float32)[None, :]
    paper = np.float32(0.92)  # yellowed paper reflects less
    return np.clip(image.astype(np.float32) * light * paper, 0, 255).astype(np.uint8)


def error_rates(reference: str, hypothesis: str) -> tuple[float, float]:
    """Character and word error rates (edit distance over the reference's length), with runs
    of white space counted as one space."""
    ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
    cer = edit_distance(list(ref), list(hyp)) / max(1, len(ref))
    wer = edit_distance(ref.split(), hyp.split()) / max(1, len(ref.split()))
    return cer, wer


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance, one row at a time: the insertions along a row are a running
    minimum, so each row is a few NumPy operations."""
    symbols = {token: index for index, token in enumerate(dict.fromkeys(reference + hypothesis))}
    hyp = np.array([symbols[token] for token in hypothesis], dtype=np.int64)
    steps = np.arange(len(hyp) + 1)
    row = steps.copy()
    for token in reference:
        substitution = row[:-1] + (hyp != symbols[token])
        best = np.minimum(np.concatenate(([row[0] + 1], substitution)), row + 1)
        row = np.minimum.accumulate(best - steps) + steps
    return int(row[-1])
