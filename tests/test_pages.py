"""Pages as items: every page of a PDF or multi-page TIFF is one input, named file#page=N."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from scancap.batch import load_or_error
from scancap.io import ImageLoadError
from scancap.pages import Page, list_pages, load_page, page_frames, pages_named

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
PHOTOS = ("photo_200557981_f800fa1af9.jpg", "text_596.jpg", "photo_4495885281_fe2a3b671d.jpg")


def write_pdf(path: Path, names: tuple[str, ...] = PHOTOS, resolution: float = 100.0) -> Path:
    """A PDF with one sample image per page (Pillow embeds each as a page-filling image)."""
    pages = [Image.open(SAMPLES / name).convert("RGB") for name in names]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=resolution)
    return path


def write_tiff(path: Path, names: tuple[str, ...] = PHOTOS) -> Path:
    pages = [Image.open(SAMPLES / name).convert("RGB") for name in names]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    return path


def test_documents_list_one_item_per_page_and_images_one_item(tmp_path: Path) -> None:
    write_pdf(tmp_path / "scan.pdf")
    write_tiff(tmp_path / "stack.tif")
    Image.open(SAMPLES / PHOTOS[0]).save(tmp_path / "single.tif")
    names = [page.name for page in list_pages([tmp_path])]
    assert names == [
        "scan.pdf#page=1", "scan.pdf#page=2", "scan.pdf#page=3", "single.tif",
        "stack.tif#page=1", "stack.tif#page=2", "stack.tif#page=3",
    ]  # fmt: skip
    assert page_frames(tmp_path / "single.tif") is None


def write_pyramid(path: Path, pages: list[np.ndarray], levels: int) -> Path:
    """Each page followed by its `levels` halvings as reduced-resolution subfiles
    (NewSubfileType 1), as scanners and archives write pyramid TIFFs."""
    with tifffile.TiffWriter(path) as tiff:
        for page in pages:
            tiff.write(page, photometric="rgb")
            for level in range(1, levels + 1):
                step = 2**level
                tiff.write(page[::step, ::step], photometric="rgb", subfiletype=1)
    return path


def test_reduced_resolution_copies_in_a_tiff_are_not_pages(tmp_path: Path) -> None:
    originals = [np.asarray(Image.open(SAMPLES / name).convert("RGB")) for name in PHOTOS[:2]]
    pyramid = write_pyramid(tmp_path / "pyramid.tif", originals[:1], levels=5)
    assert len(tifffile.TiffFile(pyramid).pages) == 6  # the page and five copies
    (page,) = list_pages([pyramid])
    assert page.name == "pyramid.tif" and page.number is None
    assert np.array_equal(load_page(page), originals[0])  # the full-resolution one
    book = write_pyramid(tmp_path / "book.tif", originals, levels=2)  # frames 0-2, then 3-5
    assert page_frames(book) == [0, 3]
    pages = list_pages([book])
    assert [p.name for p in pages] == ["book.tif#page=1", "book.tif#page=2"]
    for page, original in zip(pages, originals, strict=True):
        assert np.array_equal(load_page(page), original)
    (second,) = pages_named("book.tif#page=2", tmp_path)  # as a correction names it
    assert np.array_equal(load_page(second), originals[1])
    with pytest.raises(ValueError, match="no page 3"):
        pages_named("book.tif#page=3", tmp_path)


def test_pages_decode_to_their_own_pixels(tmp_path: Path) -> None:
    pdf, tiff = write_pdf(tmp_path / "scan.pdf"), write_tiff(tmp_path / "stack.tif")
    originals = [np.asarray(Image.open(SAMPLES / name).convert("RGB")) for name in PHOTOS]
    for number, original in enumerate(originals, start=1):
        from_tiff = load_page(Page(tiff, f"stack.tif#page={number}", number))
        assert np.array_equal(from_tiff, original)  # LZW is lossless
        rendered = load_page(Page(pdf, f"scan.pdf#page={number}", number, dpi=100))
        assert rendered.dtype == np.uint8 and rendered.shape[2] == 3
        assert abs(rendered.shape[0] - original.shape[0]) <= 1  # 100 dpi: one pixel each
        small = rendered[: original.shape[0], : original.shape[1]].astype(float)
        assert np.abs(small - original[: small.shape[0], : small.shape[1]]).mean() < 12


def test_a_pdf_page_is_rendered_at_the_requested_dpi(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "scan.pdf", PHOTOS[:1], resolution=100.0)
    height = np.asarray(Image.open(SAMPLES / PHOTOS[0])).shape[0]
    rendered = load_page(Page(pdf, "scan.pdf#page=1", 1))  # default 300 dpi
    assert abs(rendered.shape[0] - 3 * height) <= 1


def test_page_outputs_are_named_after_their_page() -> None:
    page = Page(Path("/in/a/scan.pdf"), "a/scan.pdf#page=3", 3)
    assert page.output_name() == Path("a/scan.page-3.pdf")
    assert str(page) == "/in/a/scan.pdf#page=3"
    assert Page(Path("/in/x.jpg"), "x.jpg").output_name() == Path("x.jpg")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"%PDF-1.4\n%%EOF\n", "PDF"),
        (b"not a pdf at all", "PDF"),
        (b"", "PDF"),
    ],
)
def test_a_broken_pdf_is_one_item_with_a_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    [page] = list_pages([path])
    loaded = load_or_error(page)
    assert isinstance(loaded, ImageLoadError) and reason in loaded.reason, loaded


def test_a_pdf_page_over_the_pixel_limit_is_refused_before_rendering(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "scan.pdf", PHOTOS[:1])
    loaded = load_or_error(Page(pdf, "scan.pdf#page=1", 1), max_pixels=10_000)
    assert isinstance(loaded, ImageLoadError) and "max_pixels" in loaded.reason


def test_a_broken_symbolic_link_is_an_item_that_says_so(tmp_path: Path) -> None:
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    for inputs in ([tmp_path], [tmp_path / "gone.jpg"]):
        [page] = list_pages(inputs)
        loaded = load_or_error(page)
        assert isinstance(loaded, ImageLoadError) and "broken symbolic link" in loaded.reason


def test_batches_are_bounded_by_pixels_as_well_as_by_count(tmp_path: Path) -> None:
    from scancap.batch import plan_batches
    from scancap.pages import page_pixels

    sizes = [(100, 100), (300, 300), (100, 100), (100, 100), (400, 400)]
    paths = []
    for i, (width, height) in enumerate(sizes):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (width, height)).save(paths[-1])
    assert [page_pixels(path) for path in paths] == [w * h for w, h in sizes]
    batches = plan_batches(paths, batch_size=3, pixel_budget=100_000)
    assert [len(batch) for batch in batches] == [2, 2, 1]  # 10k+90k | 10k+10k | 160k alone
    assert [len(batch) for batch in plan_batches(paths, batch_size=3)] == [3, 2]
    pdf = write_pdf(tmp_path / "scan.pdf", PHOTOS[:1], resolution=100.0)
    expected = load_page(Page(pdf, "scan.pdf#page=1", 1)).shape
    assert abs(page_pixels(Page(pdf, "scan.pdf#page=1", 1)) - expected[0] * expected[1]) < 5000


def test_the_pixel_gate_never_admits_more_than_its_budget() -> None:
    import threading
    import time

    from scancap.restore.workers import PixelGate

    gate, peak, lock = PixelGate(100), [0], threading.Lock()

    def job(pixels: int) -> None:
        with gate.admit(pixels):
            with lock:
                peak[0] = max(peak[0], gate.used)
            time.sleep(0.02)

    threads = [threading.Thread(target=job, args=(n,)) for n in (60, 60, 30, 150, 10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gate.used == 0 and peak[0] == 150  # the 150-pixel job ran, alone


def test_pdf_pages_are_rendered_at_the_configured_dpi(tmp_path: Path) -> None:
    from scancap.config import load_config

    pdf = write_pdf(tmp_path / "scan.pdf", PHOTOS[:1], resolution=100.0)
    height = np.asarray(Image.open(SAMPLES / PHOTOS[0])).shape[0]
    dpi = load_config(pdf_dpi=150).pdf_dpi
    [page] = list_pages([pdf], dpi)
    assert abs(load_page(page).shape[0] - 1.5 * height) <= 1


def test_jpeg_2000_and_avif_scans_are_read(tmp_path: Path) -> None:
    pixels = np.asarray(Image.open(SAMPLES / PHOTOS[0]).convert("RGB"))
    for suffix in (".jp2", ".avif"):
        Image.fromarray(pixels).save(tmp_path / f"scan{suffix}", quality=90)
    pages = list_pages([tmp_path])
    assert [page.name for page in pages] == ["scan.avif", "scan.jp2"]
    for page in pages:
        assert load_page(page).shape == pixels.shape


def test_a_format_scancap_cannot_read_is_an_item_that_says_so(tmp_path: Path) -> None:
    """A folder's HEIC or camera-raw file is not silently dropped: its row says what to do."""
    (tmp_path / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (tmp_path / "notes.txt").write_text("not an image")  # not an image format: not an item
    [page] = list_pages([tmp_path])
    loaded = load_or_error(page)
    assert isinstance(loaded, ImageLoadError) and "unsupported format (.heic)" in loaded.reason
