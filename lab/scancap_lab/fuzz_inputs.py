"""Seeded generator of broken inputs: what a scanner, a disk or a network can do to a file.

Used by `tests/test_fuzz.py` and `benchmarks/input_fuzz.py`. Every kind is named, so a failure
says which damage the loader did not survive. Damaged metadata (EXIF, ICC, XMP blocks that old
scanning software wrote wrong) around valid pixels must never cost the image.
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


UNREADABLE_EXIF = b"Exif\x00\x00\x13\x37 written by a scanner of 2003\x00\x00\x00"


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


def scan_jpeg(pixels: np.ndarray) -> bytes:
    """A JPEG recording 300 dpi in its JFIF header, as scanners write them (Pillow then reads
    its EXIF only when asked, which is when a malformed block shows)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", dpi=(300, 300), quality=92)
    return buffer.getvalue()


def jpeg_with_unreadable_exif(pixels: np.ndarray) -> bytes:
    """A 300-dpi JPEG of `pixels` whose EXIF block is not a TIFF structure, like the 1890s
    scan of issue 38 that scancap once rejected as corrupt."""
    return with_jpeg_segment(scan_jpeg(pixels), 0xE1, UNREADABLE_EXIF)


def with_jpeg_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """`jpeg` with one more APPn segment (`marker` 0xE0-0xEF) right after its SOI marker."""
    return jpeg[:2] + struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload + jpeg[2:]


def with_png_chunk(png: bytes, kind: bytes, data: bytes) -> bytes:
    """`png` with one more chunk right after its IHDR (8-byte signature + 25-byte IHDR)."""
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return png[:33] + struct.pack(">I", len(data)) + kind + data + crc + png[33:]


def exif_block(orientation: int) -> bytes:
    """A well-formed EXIF block whose only entry is an orientation (valid or not)."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1) + entry + b"\x00" * 4


def damaged_metadata(rng: np.random.Generator) -> Iterator[tuple[str, str, bytes]]:
    """(kind, file name, bytes): valid pixels behind each kind of malformed metadata block."""
    jpeg = scan_jpeg(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    junk = rng.bytes(40)
    exif_entries_past_end = (
        b"Exif\x00\x00II*\x00"
        + struct.pack("<IH", 8, 1)
        + struct.pack("<HHII", 0x010E, 2, 0x7FFFFFFF, 26)
    )
    app1 = {
        "EXIF not TIFF": UNREADABLE_EXIF,
        "EXIF cut short": b"Exif\x00\x00II",
        "EXIF directory past the end": b"Exif\x00\x00MM\x00*" + struct.pack(">I", 100_000),
        "EXIF entry past the end": exif_entries_past_end,
        "EXIF orientation 0": exif_block(0),
        "EXIF orientation 99": exif_block(99),
        "XMP not XML": b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta <<" + junk,
    }
    for name, payload in app1.items():
        yield (
            f"damaged metadata: {name}",
            f"{_file_stem(name)}.jpg",
            with_jpeg_segment(jpeg, 0xE1, payload),
        )
    icc = {"ICC chunk 5 of 2": b"ICC_PROFILE\x00\x05\x02" + junk,
           "ICC not a profile": b"ICC_PROFILE\x00\x01\x01" + junk}  # fmt: skip
    for name, payload in icc.items():
        yield (
            f"damaged metadata: {name}",
            f"{_file_stem(name)}.jpg",
            with_jpeg_segment(jpeg, 0xE2, payload),
        )
    png = valid_file(".png", rng)
    chunks = {
        "PNG eXIf not TIFF": (b"eXIf", junk),
        "PNG iCCP not zlib": (b"iCCP", b"ICC\x00\x00" + junk),
        "PNG XMP not XML": (b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00<x:" + junk),
    }
    for name, (kind, data) in chunks.items():
        yield (
            f"damaged metadata: {name}",
            f"{_file_stem(name)}.png",
            with_png_chunk(png, kind, data),
        )


def _file_stem(kind: str) -> str:
    return "meta_" + kind.lower().replace(" ", "_")


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
    yield from damaged_metadata(rng)


def must_fail(kind: str) -> bool:
    """Damage that can never decode; a bit-flipped or truncated file sometimes still does."""
    return kind in {"random bytes", "empty", "huge dimensions", "zero-page PDF"}


def must_decode(kind: str) -> bool:
    """Valid pixels whose metadata alone is damaged: the image must be kept."""
    return kind.startswith("damaged metadata")


def write_all(folder: Path, seed: int = 0, per_kind: int = 6) -> dict[str, str]:
    """Write every broken input into `folder`; returns file name -> kind."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {}
    for kind, name, data in broken_inputs(seed, per_kind):
        (folder / name).write_bytes(data)
        kinds[name] = kind
    return kinds
