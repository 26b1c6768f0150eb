"""What a scan carries besides its pixels, carried over to the restored file.

Archival practice (FADGI, Metamorfoze) wants the resolution and the colour profile to travel
with the image, and the EXIF record (date, scanner or camera) is how an archive dates a
scan. `read_metadata` reads them from the source's header (no pixels decoded); `save_image`
writes them back where the output format allows: DPI and ICC in JPEG, PNG, TIFF and WebP;
EXIF in JPEG, PNG, TIFF and WebP, with its orientation reset to 1 because the pixels were
turned upright when loaded. A greyscale source is written back as greyscale.

Metadata never costs an image: an EXIF block that cannot be parsed (old scanning software
writes some) is dropped, the rest kept, and `ScanMetadata.dropped` says what went and why.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms

ORIENTATION_TAG = 0x0112
VALID_ORIENTATIONS = range(1, 9)
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ICC_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
EXIF_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
DPI_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
# What Pillow raises on a malformed EXIF block (a bad TIFF header, an entry past the end, a
# value of the wrong type).
EXIF_ERRORS = (SyntaxError, struct.error, ValueError, TypeError, KeyError, IndexError,
               OverflowError, OSError, EOFError)  # fmt: skip


@dataclass(frozen=True)
class ScanMetadata:
    dpi: tuple[float, float] | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None  # with the orientation reset to 1
    grey: bool = False
    dropped: tuple[str, ...] = ()  # what could not be read, with why: "EXIF (not a TIFF file)"

    @property
    def resolution(self) -> float | None:
        """The horizontal dpi where the file records one."""
        return float(self.dpi[0]) if self.dpi else None

    def save_options(self, suffix: str) -> dict[str, object]:
        """Pillow save() keywords for an output with this suffix."""
        options: dict[str, object] = {}
        if self.dpi and suffix in DPI_FORMATS:
            options["dpi"] = self.dpi
        if self.icc_profile and suffix in ICC_FORMATS:
            options["icc_profile"] = self.icc_profile
        if self.exif and suffix in EXIF_FORMATS:
            options["exif"] = self.exif
        return options


def read_metadata(path: Path, index: int = 0) -> ScanMetadata:
    """Resolution, ICC profile, EXIF and greyness of frame `index`; empty if the file cannot
    be opened (its decoding says why), without the EXIF where only that is unreadable."""
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            with Image.open(path) as image:
                image.seek(index)
                exif, exif_dropped = _readable_exif(image)
                icc_profile, icc_dropped = _valid_icc_profile(image.info.get("icc_profile"))
                grey, dpi = image.mode in GREY_MODES, _dpi(image.info.get("dpi"))
    except (OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError):
        return ScanMetadata()
    # Pillow skips the entries of a block it cannot read, and only warns (no pixel is read
    # here, so a truncated read is the EXIF block's).
    if not exif_dropped and any(_is_exif_warning(str(warning.message)) for warning in said):
        exif_dropped = ("EXIF entries that could not be read" if exif else "EXIF (unreadable)",)
    dropped = exif_dropped + icc_dropped
    return ScanMetadata(dpi, icc_profile, exif, grey, dropped)


def dropped_note(metadata: ScanMetadata) -> str:
    """The row's note for metadata that could not be read ("" when all of it could)."""
    if not metadata.dropped:
        return ""
    return f"unreadable metadata dropped, pixels kept: {', '.join(metadata.dropped)}"


def _is_exif_warning(message: str) -> bool:
    return "EXIF" in message or "Truncated File Read" in message


def _readable_exif(image: Image.Image) -> tuple[bytes | None, tuple[str, ...]]:
    """The upright EXIF block, or None and why it cannot be read; an orientation outside 1-8
    is named too (the loader then keeps the pixels as stored)."""
    try:
        orientation = image.getexif().get(ORIENTATION_TAG)
        exif = _upright_exif(image)
    except EXIF_ERRORS as error:
        return None, (f"EXIF ({_short_reason(error)})",)
    if orientation is not None and orientation not in VALID_ORIENTATIONS:
        return exif, (f"EXIF orientation {orientation} (not 1 to 8: not applied)",)
    return exif, ()


def _valid_icc_profile(value: object) -> tuple[bytes | None, tuple[str, ...]]:
    """The ICC profile if Little CMS can parse it (a junk one would travel to the output and
    mislead colour management), else None and why."""
    if not value:
        return None, ()
    data = bytes(value) if isinstance(value, bytes | bytearray) else b""
    try:
        ImageCms.ImageCmsProfile(io.BytesIO(data))
    except (OSError, ValueError, TypeError):
        return None, ("ICC profile (not a valid colour profile)",)
    return data, ()


def _short_reason(error: BaseException) -> str:
    """A parser's message, one line and without the bytes it quotes."""
    message = str(error).split("(header", 1)[0].strip() or type(error).__name__
    return message.splitlines()[0][:80]


def _dpi(value: object) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _upright_exif(image: Image.Image) -> bytes | None:
    exif = image.getexif()
    if not exif:
        return None
    if ORIENTATION_TAG in exif:
        exif[ORIENTATION_TAG] = 1
    return exif.tobytes()
