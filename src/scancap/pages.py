"""Inputs as pages: a scanner writes PDFs and multi-page TIFFs, and each page is one item.

Every command lists its inputs with `list_pages`: an ordinary image is one `Page` without a
number; a PDF (rendered at `dpi`) and a TIFF with several frames give one `Page` per page. A
page's name is its file's relative path with ``#page=N`` (1-based) appended, the one convention
of the manifest, the ledger, the report, the CSVs and the service; its output file is named
``<stem>.page-N<suffix>``. A TIFF's reduced-resolution copies and thumbnails (a pyramid TIFF
stores each page with them) are not pages.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image

from scancap.io import (
    DECODE_ERRORS,
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    StrPath,
    iter_image_files,
    load_image,
)
from scancap.metadata import ScanMetadata, read_metadata

DEFAULT_DPI = 300
PDF_SUFFIX = ".pdf"
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
POINTS_PER_INCH = 72
NEW_SUBFILE_TYPE, SUBFILE_TYPE = 254, 255  # TIFF tags: what kind of image a frame is
_PDFIUM_LOCK = threading.Lock()  # PDFium is not thread-safe; decoding runs on threads
_PAGE_SUFFIX = re.compile(r"#page=(\d+)$")


@dataclass(frozen=True)
class Page:
    """One item of a batch: an image file, or page `number` (1-based) of a PDF or TIFF."""

    file: Path
    name: str  # the relative path, plus "#page=N" for a page of a document
    number: int | None = None
    dpi: int = DEFAULT_DPI  # what a PDF page is rendered at
    frame: int | None = None  # its 0-based frame in a TIFF, where that is not number - 1

    def __str__(self) -> str:
        return str(self.file) if self.number is None else f"{self.file}#page={self.number}"

    @property
    def index(self) -> int:
        """The 0-based frame or page index inside its file."""
        return self.frame if self.frame is not None else (self.number or 1) - 1

    def location(self) -> str:
        """Where the page is, from any working folder: its file's absolute path, plus
        "#page=N" for a page of a document (what a list of corrections names it by)."""
        file = str(self.file.absolute())
        return file if self.number is None else f"{file}#page={self.number}"

    def output_name(self) -> Path:
        """The relative path its outputs are named after: "scan.page-3.pdf" for page 3."""
        relative = Path(self.name.partition("#")[0])
        if self.number is None:
            return relative
        return relative.with_name(f"{relative.stem}.page-{self.number}{relative.suffix}")


def as_page(item: Page | Path) -> Page:
    """A page, or an image file as its one page."""
    return item if isinstance(item, Page) else Page(Path(item), Path(item).name)


@contextmanager
def _pdf(path: Path) -> Iterator[pdfium.PdfDocument]:
    """An open PDF, under the lock PDFium needs, closed after."""
    with _PDFIUM_LOCK:
        document = pdfium.PdfDocument(path)
        try:
            yield document
        finally:
            document.close()


@contextmanager
def _image_header(path: Path) -> Iterator[Image.Image]:
    """Pillow's lazy open (header only); a damaged file's warnings wait for its loading."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as image:
            yield image


def _rendered_size(pdf_page: pdfium.PdfPage, dpi: int) -> tuple[int, int]:
    scale = dpi / POINTS_PER_INCH
    width, height = pdf_page.get_size()
    return round(width * scale), round(height * scale)


def list_pages(inputs: Iterable[StrPath], dpi: int = DEFAULT_DPI) -> list[Page]:
    """The pages of every input, in order (see `scancap.io.iter_image_files` for files);
    PDF pages will be rendered at `dpi`.

    A document whose pages cannot be counted is one item: loading it reports why.
    """
    pages = []
    for path, relative in iter_image_files(inputs):
        pages += pages_of(path, relative.as_posix(), page_frames(path), dpi)
    return pages


def pages_of(file: Path, name: str, frames: list[int] | None, dpi: int = DEFAULT_DPI) -> list[Page]:
    """The items of one file named `name`: itself, or one page ("name#page=N") per frame in
    `frames` (`page_frames`); a TIFF with one page among other subfiles is that page."""
    if frames is None:
        return [Page(file, name, dpi=dpi)]
    if len(frames) == 1 and file.suffix.lower() in TIFF_SUFFIXES:  # a PDF page keeps "#page=1"
        return [Page(file, name, dpi=dpi, frame=frames[0])]
    return [
        Page(file, f"{name}#page={n}", n, dpi, None if frame == n - 1 else frame)
        for n, frame in enumerate(frames, start=1)
    ]


def pages_named(name: str, folder: Path, dpi: int = DEFAULT_DPI) -> list[Page]:
    """The pages a list (a CSV of labels or references) names by `name`: an image file, every
    page of a PDF or multi-page TIFF, or one page as "file.pdf#page=N", the name every output
    gives it. A relative path is read from `folder`. ValueError says why there are none."""
    match = _PAGE_SUFFIX.search(name)
    written = name[: match.start()] if match else name
    file = Path(written).expanduser()
    file = file if file.is_absolute() else folder / file
    if not file.exists():
        raise ValueError(f"no such file: {file}")
    if not file.is_file():
        raise ValueError(f"not a file: {file}")
    pages = pages_of(file, name, page_frames(file), dpi)
    if match is None:
        return pages
    number = int(match.group(1))
    if not 1 <= number <= len(pages):
        raise ValueError(f"{file} has no page {number} (pages 1 to {len(pages)})")
    return [replace(pages[number - 1], name=name)]


def page_pixels(item: Page | Path) -> int:
    """Pixels the page will decode to, from its header alone (0 when that cannot be read):
    what the pixel budget admits batches and restorations by."""
    page = as_page(item)
    try:
        if page.file.suffix.lower() == PDF_SUFFIX:
            with _pdf(page.file) as document:
                width, height = _rendered_size(document[page.index], page.dpi)
            return width * height
        with _image_header(page.file) as image:
            image.seek(page.index)
            return image.width * image.height
    except (*DECODE_ERRORS, pdfium.PdfiumError):
        return 0


def page_metadata(page: Page) -> ScanMetadata:
    """What the page's restored file keeps from its source (a PDF page: its render dpi)."""
    if page.file.suffix.lower() == PDF_SUFFIX:
        return ScanMetadata(dpi=(page.dpi, page.dpi))
    return read_metadata(page.file, page.index)


def require_inputs(inputs: Iterable[StrPath]) -> None:
    """FileNotFoundError unless the inputs hold at least one file (checked before models load)."""
    inputs = list(inputs)
    if not iter_image_files(inputs):
        raise _nothing_found(inputs)


def require_pages(inputs: Iterable[StrPath], dpi: int = DEFAULT_DPI) -> list[Page]:
    """`list_pages`, with FileNotFoundError when the inputs hold no file at all."""
    inputs = list(inputs)
    pages = list_pages(inputs, dpi)
    if not pages:
        raise _nothing_found(inputs)
    return pages


def _nothing_found(inputs: list[StrPath]) -> FileNotFoundError:
    return FileNotFoundError(f"no images or PDFs found in {', '.join(map(str, inputs))}")


def page_frames(path: Path) -> list[int] | None:
    """The page or frame index of each page of a PDF or a TIFF holding several images (only
    its full-resolution pages); None for a one-image file and a file that cannot be read."""
    suffix = path.suffix.lower()
    try:
        if suffix == PDF_SUFFIX:
            with _pdf(path) as document:
                return list(range(len(document))) or None  # no pages: loading says so
        if suffix in TIFF_SUFFIXES:
            with _image_header(path) as tiff:
                count = getattr(tiff, "n_frames", 1)
                frames = [i for i in range(count) if _is_page(tiff, i)] if count > 1 else []
            return frames if frames and frames != [0] else None
    except (*DECODE_ERRORS, pdfium.PdfiumError):
        return None
    return None


def _is_page(tiff: Image.Image, frame: int) -> bool:
    """Whether a TIFF frame is a page, not a reduced-resolution copy or a thumbnail of one
    (NewSubfileType bit 0, or the older SubfileType 2)."""
    tiff.seek(frame)
    tags = tiff.tag_v2  # type: ignore[attr-defined]
    return not (int(tags.get(NEW_SUBFILE_TYPE, 0)) & 1 or tags.get(SUBFILE_TYPE) == 2)


def load_page(page: Page, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The page as (H, W, 3) uint8 RGB; ImageLoadError names the page and the reason."""
    if page.file.suffix.lower() == PDF_SUFFIX:
        return render_pdf_page(page, max_pixels)
    try:
        return load_image(page.file, max_pixels=max_pixels, index=page.index)
    except ImageLoadError as error:
        raise ImageLoadError(str(page), error.reason) from error


def render_pdf_page(page: Page, max_pixels: int) -> np.ndarray:
    """Render one PDF page at its dpi; its size is checked against max_pixels before rendering."""
    try:
        with _pdf(page.file) as document:
            if len(document) == 0:
                raise ImageLoadError(str(page), "PDF has no pages")
            pdf_page = document[page.index]
            width, height = _rendered_size(pdf_page, page.dpi)
            if width * height > max_pixels:
                raise ImageLoadError(
                    str(page),
                    f"page too large at {page.dpi} dpi: {width}x{height} = {width * height:,} "
                    f"pixels, more than max_pixels={max_pixels:,}",
                )
            bitmap = pdf_page.render(scale=page.dpi / POINTS_PER_INCH, rev_byteorder=True)
            pixels = np.array(bitmap.to_numpy()[..., :3], np.uint8)
    except pdfium.PdfiumError as error:
        raise ImageLoadError(str(page), f"PDF file is corrupt or unreadable ({error})") from error
    except (OSError, MemoryError) as error:
        raise ImageLoadError(str(page), f"PDF page could not be rendered ({error})") from error
    return np.ascontiguousarray(pixels)
