"""Seeded generator of broken inputs: what a scanner, a disk or a network can do to a file.

Used by `tests/test_fuzz.py` and `benchmarks/input_fuzz.py`. Every kind is named, so a failure
says which damage the loader did not survive.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

SUFFIXES = (".jpg", ".png", ".tif", ".pdf", ".webp", ".bmp", ".gif")
ZERO_PAGE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
HUGE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 14400 14400]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)  # a 200-inch page: 3.6 gigapixels at 300 dpi


def valid_file(suffix: str, rng: np.random.Generator) -> bytes:
    """A small valid image (or one-page PDF) with random content."""
    pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    formats = {".jpg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".pdf": "PDF", ".webp": "WEBP",
               ".bmp": "BMP", ".gif": "GIF"}  # fmt: skip
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, formats[suffix])
    return buffer.getvalue()


def huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares `width` x `height` pixels, with a valid CRC and no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def huge_tiff(side: int = 90_000) -> bytes:
    """A little-endian TIFF declaring side x side 8-bit grey pixels, with no strip data."""
    strip_bytes = min(side * side, 2**32 - 1)
    entries = [
        (256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 8), (259, 3, 1, 1),
        (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (279, 4, 1, strip_bytes),
    ]  # fmt: skip
    body = struct.pack("<H", len(entries))
    body += b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, _, value in entries)
    return b"II*\x00" + struct.pack("<I", 8) + body + b"\x00\x00\x00\x00"


def bit_flipped(data: bytes, rng: np.random.Generator, flips: int) -> bytes:
    damaged = bytearray(data)
    for position in rng.integers(0, len(damaged) * 8, flips):
        damaged[position // 8] ^= 1 << (position % 8)
    return bytes(damaged)


def broken_inputs(seed: int = 0, per_kind: int = 6) -> Iterator[tuple[str, str, bytes]]:
    """(kind, file name, bytes) for every kind of damage, `per_kind` of each random one."""
    rng = np.random.default_rng(seed)
    for suffix in SUFFIXES:
        for i in range(per_kind):
            size = int(rng.integers(0, 4000))
            yield "random bytes", f"random{i}{suffix}", rng.bytes(size)
            whole = valid_file(suffix, rng)
            cut = int(rng.integers(1, max(2, len(whole) - 1)))
            yield "truncated", f"truncated{i}{suffix}", whole[:cut]
            yield "bit-flipped", f"flipped{i}{suffix}", bit_flipped(whole, rng, 1 + i * 4)
        yield "empty", f"empty{suffix}", b""
    yield "huge dimensions", "huge.png", huge_png()
    yield "huge dimensions", "huge.tif", huge_tiff()
    yield "huge dimensions", "huge.pdf", HUGE_PDF
    yield "zero-page PDF", "nopages.pdf", ZERO_PAGE_PDF


def must_fail(kind: str) -> bool:
    """Damage that can never decode; a bit-flipped or truncated file sometimes still does."""
    return kind in {"random bytes", "empty", "huge dimensions", "zero-page PDF"}


def write_all(folder: Path, seed: int = 0, per_kind: int = 6) -> dict[str, str]:
    """Write every broken input into `folder`; returns file name -> kind."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {}
    for kind, name, data in broken_inputs(seed, per_kind):
        (folder / name).write_bytes(data)
        kinds[name] = kind
    return kinds
