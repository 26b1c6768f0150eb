"""Image input/output: every file in, uint8 RGB out; every write atomic.

``load_image`` turns anything a scanner, camera or phone produces (JPEG, PNG, TIFF, BMP, WebP,
GIF, JPEG 2000, AVIF) into one layout, ``(H, W, 3)`` C-contiguous uint8 RGB, so the rest of the
package never deals with modes, bit depths, palettes, alpha or EXIF orientation. Every way a
file can be bad becomes one ``ImageLoadError`` naming the file and the reason, so a batch can
report it and go on; a file in a format scancap cannot read (HEIC, camera raw...) too.

Writes go to a temporary file in the destination folder and are then renamed over the target,
so an interrupted run never leaves a half-written image, CSV or report behind.
"""

from __future__ import annotations

import os
import secrets
import struct
import threading
import warnings
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import IO, Any

import cv2
import imageio.v3 as iio
import numpy as np
from imageio.core.request import InitializationError
from imageio.core.v3_plugin_api import PluginV3
from PIL import Image

from scancap.metadata import EXIF_ERRORS, ScanMetadata

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "INPUT_SUFFIXES",
    "ImageLoadError",
    "atomic_write_bytes",
    "atomic_write_text",
    "iter_image_files",
    "load_image",
    "save_image",
]

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width * height accepted: a 6x4-inch print at 1200 dpi is 35 megapixels, a letter
page at 600 dpi 34. At this limit `scancap run` stays within 3 GB whatever the mix of sizes
(reports/pipeline.md); larger scans need a higher --max-pixels and more memory."""

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".jp2", ".j2k", ".avif"}
)
# Image formats scans and cameras write that scancap cannot decode: a folder search lists them
# anyway, so each gets a row saying so instead of vanishing from the batch.
UNSUPPORTED_SUFFIXES = frozenset(
    {".heic", ".heif", ".jxl", ".psd", ".xcf", ".djvu", ".svg", ".eps", ".dng", ".cr2", ".cr3",
     ".nef", ".arw", ".orf", ".raf", ".rw2"}
)  # fmt: skip
INPUT_SUFFIXES = IMAGE_SUFFIXES | {".pdf"}  # what scancap reads (PDF: scancap.pages)

StrPath = str | os.PathLike[str]

# Pillow modes read as they are and rescaled here: Pillow would clip them when converting to RGB.
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LOSSY_SUFFIXES = frozenset({".jpg", ".jpeg", ".webp"})
# Formats written back as themselves; others (GIF: palette, lossy for photos) become PNG.
KEEP_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})

# Errors Pillow, imageio and OpenCV raise on bad data (imageio wraps opening errors in OSError).
DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    MemoryError,
    cv2.error,
    Image.DecompressionBombError,
)

# EXIF Orientation (tag 274) -> the operation that makes the pixels display upright.
_ORIENTATIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: np.fliplr,
    3: lambda image: np.rot90(image, 2),
    4: np.flipud,
    5: lambda image: np.swapaxes(image, 0, 1),
    6: lambda image: np.rot90(image, -1),
    7: lambda image: np.swapaxes(np.rot90(image, 2), 0, 1),
    8: lambda image: np.rot90(image, 1),
}

_PILLOW_LIMIT_LOCK = threading.Lock()
# Pillow warns before it raises on a truncated TIFF; the error becomes the row's reason, and the
# warning would only repeat it on the terminal.
warnings.filterwarnings("ignore", "Truncated File Read", UserWarning, "PIL.TiffImagePlugin")
# Pillow skips an EXIF entry it cannot read and warns; the pixels do not need it, and an EXIF
# block that cannot be read at all is named in the row's notes (`metadata.dropped_note`).
warnings.filterwarnings("ignore", ".*[Cc]orrupt EXIF", UserWarning, "PIL.TiffImagePlugin")


class ImageLoadError(Exception):
    """A file that could not be read as an image; the message names the file and the reason."""

    def __init__(self, path: StrPath, reason: str) -> None:
        # Both go to Exception so the error pickles across worker processes.
        super().__init__(path, reason)
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


def load_image(path: StrPath, max_pixels: int = DEFAULT_MAX_PIXELS, index: int = 0) -> np.ndarray:
    """Read image ``index`` (a TIFF's page) of ``path`` as upright ``(H, W, 3)`` uint8 RGB.

    Grey is repeated to three channels, palettes are applied, CMYK is converted, deeper
    integer samples are rounded to 8 bits (16-bit ``v`` becomes ``round(v / 257)``), float
    samples are taken to lie in [0, 1], alpha is flattened onto white (the paper behind a
    scan) and the EXIF orientation is applied. The size in the header is checked against
    ``max_pixels`` before any pixel is decoded.

    Raises
    ------
    ImageLoadError
        For a missing, unreadable, empty, truncated, corrupt, unsupported or oversized file.
    """
    path = Path(path)
    try:
        _check_nonempty_file(path)
        _check_supported(path)
        with _open_with_pixel_limit(path, max_pixels) as file:
            _check_pixel_count(path, file.properties(index=index).shape, max_pixels)
            # Only after the size check: Pillow decodes a whole PNG to look for its EXIF.
            metadata = _frame_metadata(path, file, index)
            pixels = _decode(path, file, metadata, index)
    except DECODE_ERRORS as error:
        raise ImageLoadError(path, _failure_reason(error, max_pixels, path)) from error
    upright = _apply_orientation(_to_rgb8(pixels), metadata.get("Orientation"))
    return np.ascontiguousarray(upright)


def save_image(
    path: StrPath,
    image: np.ndarray,
    *,
    quality: int = 95,
    inputs: Collection[StrPath] = (),
    metadata: ScanMetadata | None = None,
) -> Path:
    """Write a uint8 ``(H, W)`` grey or ``(H, W, 3)`` RGB image atomically; return its path.

    The format follows the suffix. ``quality`` (1-100) applies to JPEG and WebP; PNG, TIFF and
    BMP are lossless. Parent folders are created. ``inputs`` lists the source images, which
    are never overwritten, whatever spelling of the path points at them. ``metadata`` (the
    source's) carries resolution, ICC profile and EXIF over where the format allows, and
    writes a greyscale source's image as greyscale.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        supported = " ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(f"{path}: unsupported image suffix {path.suffix!r} (use {supported})")
    _check_savable(image)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    destination = path.resolve()
    if any(destination == Path(source).resolve() for source in inputs):
        raise ValueError(f"{path}: refusing to overwrite an input image")
    options: dict[str, Any] = {"quality": quality} if suffix in _LOSSY_SUFFIXES else {}
    if metadata is not None:
        options |= metadata.save_options(suffix)
        if metadata.grey and image.ndim == 3:
            image = np.rint(image.mean(axis=2)).astype(np.uint8)
    encoded = iio.imwrite(
        "<bytes>", image, extension=suffix, plugin="pillow", is_batch=False, **options
    )
    return atomic_write_bytes(path, encoded)


@contextmanager
def atomic_open(path: StrPath, encoding: str | None = None) -> Iterator[IO[Any]]:
    """A new file that replaces ``path`` only if the ``with`` block ends without an error.

    Readers see the old file or the whole new one, never a part: the content goes to a hidden
    temporary file in the same folder (same file system, so the final ``os.replace`` is
    atomic), removed if anything fails. Binary unless ``encoding`` is given (newlines are kept
    as written). Parent folders are created. Lets large outputs (an HTML report) be streamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Short random name: a long target name plus a suffix could exceed the file-name limit.
    temporary = path.with_name(f".{path.name[:64]}.{secrets.token_hex(4)}.tmp")
    try:
        # "x" never clobbers anything; unlike mkstemp, the file gets the usual umask permissions.
        mode = "xb" if encoding is None else "x"
        with temporary.open(mode, encoding=encoding, newline="" if encoding else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_bytes(path: StrPath, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_open``); returns ``path``."""
    with atomic_open(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: StrPath, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` atomically (see ``atomic_write_bytes``), newlines kept as given."""
    return atomic_write_bytes(path, text.encode(encoding))


def output_path(out_dir: Path, relative: Path) -> Path:
    """Where a restored image goes: same relative path, same format when it is kept."""
    target = out_dir / relative
    if target.suffix.lower() not in KEEP_SUFFIXES:
        target = target.with_suffix(".png")
    return target


def iter_image_files(inputs: Iterable[StrPath]) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(absolute path, relative path)`` pairs, in a fixed order.

    Folders are searched recursively for files with a suffix in ``INPUT_SUFFIXES`` (any
    case), skipping hidden files and folders (``.DS_Store``, macOS ``._photo.jpg``, our own
    temporary files); the relative path is taken from that folder. A file named directly is
    kept whatever its suffix, so a bad one is reported rather than silently dropped, with its
    name as relative path; so is a broken symbolic link, named or in a folder. A file reached
    twice is listed once.

    Raises
    ------
    FileNotFoundError
        If an input does not exist.
    """
    found: dict[Path, Path] = {}
    for item in inputs:
        root = Path(item).expanduser().absolute()
        if root.is_dir():
            pairs = [(file, file.relative_to(root)) for file in _images_under(root)]
        elif root.exists() or root.is_symlink():
            pairs = [(root, Path(root.name))]
        else:
            raise FileNotFoundError(f"input path does not exist: {item}")
        for file, relative in pairs:
            found.setdefault(file, relative)
    return list(found.items())


def _images_under(folder: Path) -> list[Path]:
    """Visible image files below ``folder``, sorted by their path relative to it."""
    files = (
        file
        for file in folder.rglob("*")
        if is_listed_in_folder(file.relative_to(folder))
        and (file.is_file() or (file.is_symlink() and not file.exists()))
    )
    return sorted(files, key=lambda file: file.relative_to(folder).parts)


def is_listed_in_folder(relative: PurePath) -> bool:
    """Whether a folder search lists the file at `relative`: an image, PDF or known image
    format (any case), in no hidden folder and not hidden itself."""
    return relative.suffix.lower() in INPUT_SUFFIXES | UNSUPPORTED_SUFFIXES and not any(
        part.startswith(".") for part in relative.parts
    )


def _check_supported(path: Path) -> None:
    if path.suffix.lower() in UNSUPPORTED_SUFFIXES:
        raise ImageLoadError(
            path, f"unsupported format ({path.suffix}): convert it to TIFF, PNG or JPEG"
        )


def _check_nonempty_file(path: Path) -> None:
    """Name the three file-system failures plainly instead of as decoder errors."""
    if path.is_symlink() and not path.exists():
        raise ImageLoadError(path, f"broken symbolic link (to {os.readlink(path)})")
    if not path.exists():
        raise ImageLoadError(path, "file not found")
    if not path.is_file():
        raise ImageLoadError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)")


@contextmanager
def _open_with_pixel_limit(path: Path, max_pixels: int) -> Iterator[PluginV3]:
    """Open lazily (header only) with Pillow's decompression-bomb guard set to ``max_pixels``.

    Pillow's guard is a module global, so it is set and restored under a lock. It refuses
    images above twice its limit while opening; those in between are left to
    ``_check_pixel_count``, which words the error, so Pillow's warning for them is muted.
    """
    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
        try:
            file = iio.imopen(path, "r", plugin="pillow")
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    with file:
        yield file


def _check_pixel_count(path: Path, shape: tuple[int, ...], max_pixels: int) -> None:
    height, width = shape[:2]
    if height * width > max_pixels:
        raise ImageLoadError(
            path,
            f"image too large: {width}x{height} = {width * height:,} pixels, "
            f"more than max_pixels={max_pixels:,}",
        )


def _frame_metadata(path: Path, file: PluginV3, index: int) -> dict[str, Any]:
    """The frame's header fields that decoding needs (mode, transparency, orientation).

    An EXIF block that cannot be parsed is left out rather than costing the image: its pixels
    are kept as stored (no orientation to apply) and `read_metadata` names what was dropped.
    """
    try:
        return file.metadata(index=index, exclude_applied=False)
    except EXIF_ERRORS:
        with Image.open(path) as image:
            image.seek(index)
            return {**image.info, "mode": image.mode, "shape": image.size}


def _decode(path: Path, file: PluginV3, metadata: dict[str, Any], index: int) -> np.ndarray:
    """Decode one frame fully (so truncation raises) as RGB, RGBA or high-depth grey."""
    if _is_16bit_colour(path, metadata):
        # Pillow keeps only the high byte of 16-bit colour samples; OpenCV keeps all 16 bits.
        return iio.imread(path, plugin="opencv", index=index, flags=cv2.IMREAD_UNCHANGED)
    return file.read(index=index, mode=_target_mode(metadata))


def _target_mode(metadata: dict[str, Any]) -> str | None:
    """Pillow mode to convert to; None keeps high-depth grey for rounding in ``_to_uint8``."""
    mode = metadata["mode"]
    if mode in _HIGH_DEPTH_MODES:
        return None
    # "transparency" is a transparent palette index or colour (GIF, PNG tRNS).
    if mode in _ALPHA_MODES or "transparency" in metadata:
        return "RGBA"
    return "RGB"


def _is_16bit_colour(path: Path, metadata: dict[str, Any]) -> bool:
    """Whether a PNG or TIFF stores colour (or grey with alpha) with 16 bits per sample."""
    if metadata["mode"] not in ("RGB", "RGBA", "LA"):
        return False
    if "BitsPerSample" in metadata:  # TIFF tag
        return max(np.atleast_1d(metadata["BitsPerSample"])) > 8
    with path.open("rb") as handle:
        header = handle.read(25)
    # PNG: 8-byte signature, IHDR length and type, width, height, then the bit depth.
    return header.startswith(_PNG_SIGNATURE) and header[24:25] == b"\x10"


# The format a file claims by its suffix, for decoding errors.
_FORMAT_NAMES = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jp2": "JPEG 2000",
    ".j2k": "JPEG 2000",
    ".avif": "AVIF",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WebP",
    ".gif": "GIF",
}


def _failure_reason(error: BaseException, max_pixels: int, path: Path) -> str:
    """Plain-words reason for a decoding failure, naming the format the file claims to be."""
    cause = error.__cause__ or error  # imageio wraps errors raised while opening in OSError
    claimed = _FORMAT_NAMES.get(path.suffix.lower())
    if isinstance(cause, PermissionError):
        return "permission denied"
    if isinstance(cause, InitializationError):
        return f"not a valid {claimed} file" if claimed else "not a recognised image format"
    if isinstance(cause, Image.DecompressionBombError):
        return f"image too large: more than max_pixels={max_pixels:,} pixels"
    if isinstance(cause, MemoryError):
        return "not enough memory to decode the image"
    detail = str(cause) or type(cause).__name__
    # Pillow's last guess can name another format ("not a TIFF file"): that misleads.
    if claimed and any(name in detail for name in set(_FORMAT_NAMES.values()) - {claimed}):
        return f"truncated or corrupt {claimed} file"
    return f"truncated or corrupt {claimed or 'image'} file ({detail})"


def _to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Decoded grey, RGB or RGBA of any depth -> ``(H, W, 3)`` uint8 RGB."""
    image = _to_uint8(pixels)
    if image.ndim == 2:
        return np.repeat(image[..., np.newaxis], 3, axis=-1)
    if image.shape[-1] == 4:
        return _flatten_on_white(image)
    return image


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Rescale to uint8 with rounding; floats are clipped to [0, 1] first."""
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind == "f":
        unit = np.clip(np.nan_to_num(image), 0.0, 1.0)
        return np.rint(unit * 255).astype(np.uint8)
    # Exact integer rounding of v * 255 / top: for 16 bits that is round(v / 257).
    top = int(np.iinfo(image.dtype).max)
    wide = np.uint32 if image.dtype.itemsize <= 2 else np.uint64
    values = np.clip(image, 0, None).astype(wide)
    return ((values * 255 + top // 2) // top).astype(np.uint8)


def _flatten_on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite uint8 RGBA onto a white background (transparent areas become paper white)."""
    alpha = rgba[..., 3:].astype(np.float32) / 255
    rgb = rgba[..., :3] * alpha + 255 * (1 - alpha)
    return np.rint(rgb).astype(np.uint8)


def _apply_orientation(image: np.ndarray, orientation: object) -> np.ndarray:
    """Rotate/flip as the EXIF Orientation tag says; unknown or missing values change nothing."""
    transform = _ORIENTATIONS.get(orientation) if isinstance(orientation, int) else None
    return image if transform is None else transform(image)


def _check_savable(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValueError(
            f"save_image expects a uint8 array, got {dtype}; "
            "convert first (e.g. skimage.util.img_as_ubyte)"
        )
    if image.size == 0 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"save_image expects an (H, W) or (H, W, 3) image, got {image.shape}")
