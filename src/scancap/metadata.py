"""What a scan carries besides its pixels, carried over to the restored file.

Archival practice (FADGI, Metamorfoze) wants the resolution and the colour profile to travel
with the image, and the EXIF record (date, scanner or camera) is how an archive dates a
scan. `read_metadata` reads them from the source's header (no pixels decoded); `save_image`
writes them back where the output format allows: DPI and ICC in JPEG, PNG, TIFF and WebP;
EXIF in JPEG, PNG, TIFF and WebP, with its orientation reset to 1 because the pixels were
turned upright when loaded. A greyscale source is written back as greyscale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ORIENTATION_TAG = 0x0112
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ICC_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
EXIF_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
DPI_FORMATS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})


@dataclass(frozen=True)
class ScanMetadata:
    dpi: tuple[float, float] | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None  # with the orientation reset to 1
    grey: bool = False

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
    """Resolution, ICC profile, EXIF and greyness of frame `index`; empty if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.seek(index)
                return ScanMetadata(
                    dpi=_dpi(image.info.get("dpi")),
                    icc_profile=image.info.get("icc_profile") or None,
                    exif=_upright_exif(image),
                    grey=image.mode in GREY_MODES,
                )
    except (OSError, ValueError, EOFError, SyntaxError, Image.DecompressionBombError):
        return ScanMetadata()


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
