"""Tests for scancap.io on real images: scikit-image's data and the bundled samples."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile, ImageOps
from skimage import data

from scancap.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageLoadError,
    atomic_write_bytes,
    atomic_write_text,
    iter_image_files,
    load_image,
    save_image,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_IMAGES = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

ASTRONAUT = data.astronaut()  # 512 x 512 RGB
COFFEE = data.coffee()  # 400 x 600 RGB
CHELSEA = data.chelsea()  # 300 x 451 RGB, not square: catches swapped axes
CAMERA = data.camera()  # 512 x 512 grey

# 16-bit samples and their 8-bit values, round(v / 257); for 200, 450 and 65400 that differs
# from the truncation v >> 8 (0, 1 and 255).
DEEP = np.array([0, 200, 257, 450, 25700, 32767, 32768, 65400, 65535], dtype=np.uint16)
DEEP_AS_8BIT = np.array([0, 1, 1, 2, 100, 127, 128, 254, 255], dtype=np.uint8)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def assert_rgb8(image: np.ndarray, shape: tuple[int, int]) -> None:
    assert image.shape == (*shape, 3)
    assert image.dtype == np.uint8
    assert image.flags.c_contiguous


def png_bytes(width: int, height: int, colour_type: int, bit_depth: int, rows: bytes) -> bytes:
    """A PNG written by hand, for layouts Pillow cannot write and for lying headers."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- formats -------------------------------------------------------------------------------

FORMATS = [  # suffix, Pillow format, mean |error| allowed against the original
    (".png", "PNG", 0),
    (".tif", "TIFF", 0),
    (".tiff", "TIFF", 0),
    (".bmp", "BMP", 0),
    (".jpg", "JPEG", 4),
    (".jpeg", "JPEG", 4),
    (".webp", "WEBP", 6),
    (".gif", "GIF", 8),
]


@pytest.mark.parametrize(("suffix", "pil_format", "tolerance"), FORMATS)
def test_load_every_format(tmp_path: Path, suffix: str, pil_format: str, tolerance: int) -> None:
    path = tmp_path / f"astronaut{suffix}"
    iio.imwrite(path, ASTRONAUT, plugin="pillow")
    assert Image.open(path).format == pil_format

    loaded = load_image(path)

    assert_rgb8(loaded, ASTRONAUT.shape[:2])
    assert np.array_equal(loaded, np.asarray(Image.open(path).convert("RGB")))
    assert mean_abs_diff(loaded, ASTRONAUT) <= tolerance


@pytest.mark.parametrize(("suffix", "pil_format", "tolerance"), FORMATS)
def test_save_image_every_format(
    tmp_path: Path, suffix: str, pil_format: str, tolerance: int
) -> None:
    path = save_image(tmp_path / "out" / f"coffee{suffix}", COFFEE)

    assert path == tmp_path / "out" / f"coffee{suffix}"
    assert Image.open(path).format == pil_format
    back = iio.imread(path, plugin="pillow", index=0, mode="RGB")
    assert back.shape == COFFEE.shape
    assert mean_abs_diff(back, COFFEE) <= tolerance


def test_greyscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    path = tmp_path / "camera.png"
    iio.imwrite(path, CAMERA)
    assert Image.open(path).mode == "L"

    loaded = load_image(path)

    assert_rgb8(loaded, CAMERA.shape)
    for channel in range(3):
        assert np.array_equal(loaded[..., channel], CAMERA)


def test_bilevel_image(tmp_path: Path) -> None:
    path = tmp_path / "bilevel.png"
    Image.fromarray(CAMERA > 128).save(path)
    assert Image.open(path).mode == "1"

    loaded = load_image(path)

    assert np.array_equal(loaded[..., 1], np.where(CAMERA > 128, 255, 0))


# --- bit depths ----------------------------------------------------------------------------


def test_deep_values_are_not_a_truncation() -> None:
    assert not np.array_equal(DEEP >> 8, DEEP_AS_8BIT)


@pytest.mark.parametrize("writer", ["pillow-png", "pillow-tiff", "tifffile"])
def test_16bit_grey_rounds_to_8bit(tmp_path: Path, writer: str) -> None:
    grey = np.tile(DEEP, (4, 1))
    path = tmp_path / ("grey16.png" if writer == "pillow-png" else "grey16.tif")
    if writer == "tifffile":
        tifffile.imwrite(path, grey)
    else:
        Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I;16")

    loaded = load_image(path)

    assert_rgb8(loaded, grey.shape)
    for channel in range(3):
        assert np.array_equal(loaded[0, :, channel], DEEP_AS_8BIT)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_rounds_to_8bit(tmp_path: Path, suffix: str) -> None:
    # Pillow alone drops the low byte of 16-bit colour; the loader must still round.
    rgb = np.stack([DEEP, DEEP[::-1], np.full_like(DEEP, 257 * 7)], axis=-1)[np.newaxis]
    path = tmp_path / f"colour16{suffix}"
    if suffix == ".png":
        cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    else:
        tifffile.imwrite(path, rgb, photometric="rgb")

    loaded = load_image(path)

    assert_rgb8(loaded, rgb.shape[:2])
    assert np.array_equal(loaded[0, :, 0], DEEP_AS_8BIT)
    assert np.array_equal(loaded[0, :, 1], DEEP_AS_8BIT[::-1])
    assert np.all(loaded[0, :, 2] == 7)


def test_16bit_grey_with_alpha_png(tmp_path: Path) -> None:
    samples = np.zeros((1, DEEP.size, 2), dtype=">u2")
    samples[..., 0] = DEEP
    samples[..., 1] = 65535
    samples[0, 0, 1] = 0  # first pixel transparent
    rows = b"\x00" + samples.tobytes()  # filter byte 0 for the single row
    path = tmp_path / "grey_alpha16.png"
    path.write_bytes(png_bytes(DEEP.size, 1, colour_type=4, bit_depth=16, rows=rows))

    loaded = load_image(path)

    assert np.array_equal(loaded[0, 1:, 0], DEEP_AS_8BIT[1:])
    assert np.array_equal(loaded[0, 0], [255, 255, 255])


def test_float_tiff_is_taken_as_unit_range(tmp_path: Path) -> None:
    values = np.array([[0.0, 0.25, 0.5, 1.0, 1.5, -0.2]], dtype=np.float32)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "F"

    loaded = load_image(path)

    assert np.array_equal(loaded[0, :, 0], [0, 64, 128, 255, 255, 0])


def test_32bit_integer_tiff(tmp_path: Path) -> None:
    values = np.array([[0, -5, 2**30, 2**31 - 1]], dtype=np.int32)
    path = tmp_path / "int32.tif"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I"

    loaded = load_image(path)

    assert np.array_equal(loaded[0, :, 0], [0, 0, 128, 255])


# --- palettes, alpha, CMYK -----------------------------------------------------------------


def test_palette_png(tmp_path: Path) -> None:
    quantized = Image.fromarray(COFFEE).quantize(64)
    path = tmp_path / "palette.png"
    quantized.save(path)
    assert Image.open(path).mode == "P"

    loaded = load_image(path)

    assert_rgb8(loaded, COFFEE.shape[:2])
    assert np.array_equal(loaded, np.asarray(quantized.convert("RGB")))
    assert mean_abs_diff(loaded, COFFEE) < 10


def test_gif_first_frame_only(tmp_path: Path) -> None:
    red = Image.new("RGB", (40, 30), (255, 0, 0))
    blue = Image.new("RGB", (40, 30), (0, 0, 255))
    path = tmp_path / "two_frames.gif"
    red.save(path, save_all=True, append_images=[blue], duration=100)
    assert Image.open(path).n_frames == 2

    loaded = load_image(path)

    assert_rgb8(loaded, (30, 40))
    assert np.all(loaded == [255, 0, 0])


@pytest.mark.parametrize(
    ("suffix", "options"), [(".png", {}), (".tif", {}), (".webp", {"lossless": True})]
)
def test_rgba_is_flattened_on_white(tmp_path: Path, suffix: str, options: dict) -> None:
    rgb = ASTRONAUT.copy()
    alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    alpha[:100, :100] = 0  # transparent corner
    rgb[200:220] = 0
    alpha[200:220] = 128  # half-transparent black stripe
    path = tmp_path / f"rgba{suffix}"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path, **options)

    loaded = load_image(path)

    assert_rgb8(loaded, rgb.shape[:2])
    assert np.all(loaded[:100, :100] == 255)
    assert np.all(loaded[200:220] == 127)  # 255 * (1 - 128 / 255)
    assert np.array_equal(loaded[300:], ASTRONAUT[300:])


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_transparent_palette_index_becomes_white(tmp_path: Path, suffix: str) -> None:
    indices = np.zeros((20, 30), dtype=np.uint8)
    indices[:, 15:] = 1
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 0, 200, 30, 10] + [0, 0, 0] * 254)
    path = tmp_path / f"transparent{suffix}"
    image.save(path, transparency=0)
    assert "transparency" in Image.open(path).info

    loaded = load_image(path)

    assert np.all(loaded[:, :15] == 255)
    assert np.all(loaded[:, 15:] == [200, 30, 10])


def test_grey_with_alpha(tmp_path: Path) -> None:
    alpha = np.full(CAMERA.shape, 255, dtype=np.uint8)
    alpha[:, :256] = 0
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([CAMERA, alpha]), "LA").save(path)
    assert Image.open(path).mode == "LA"

    loaded = load_image(path)

    assert np.all(loaded[:, :256] == 255)
    assert np.array_equal(loaded[:, 256:, 0], CAMERA[:, 256:])


@pytest.mark.parametrize(("suffix", "tolerance"), [(".tif", 0), (".jpg", 4)])
def test_cmyk_is_converted(tmp_path: Path, suffix: str, tolerance: int) -> None:
    path = tmp_path / f"cmyk{suffix}"
    Image.fromarray(CHELSEA).convert("CMYK").save(path)
    assert Image.open(path).mode == "CMYK"

    loaded = load_image(path)

    assert_rgb8(loaded, CHELSEA.shape[:2])
    assert mean_abs_diff(loaded, CHELSEA) <= tolerance


# --- EXIF orientation ----------------------------------------------------------------------


def save_with_orientation(path: Path, orientation: int, **options: object) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(CHELSEA).save(path, exif=exif, **options)


def test_exif_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    save_with_orientation(path, 6, quality=95)

    loaded = load_image(path)

    assert_rgb8(loaded, (CHELSEA.shape[1], CHELSEA.shape[0]))
    assert mean_abs_diff(loaded, np.rot90(CHELSEA, -1)) < 3
    assert mean_abs_diff(loaded, np.rot90(CHELSEA, 1)) > 20


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"orientation{orientation}.png"
    save_with_orientation(path, orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))

    loaded = load_image(path)

    assert np.array_equal(loaded, expected)
    assert loaded.flags.c_contiguous
    assert (loaded.shape[:2] == CHELSEA.shape[:2]) == (orientation <= 4)


# --- failures ------------------------------------------------------------------------------


def assert_load_error(path: Path, reason: str, **kwargs: int) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as caught:
        load_image(path, **kwargs)
    error = caught.value
    assert error.path == path
    assert reason in error.reason
    assert path.name in str(error)
    assert reason in str(error)
    return error


def encoded(image: np.ndarray, pil_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=pil_format)
    return buffer.getvalue()


def test_missing_file(tmp_path: Path) -> None:
    assert_load_error(tmp_path / "nowhere.jpg", "file not found")


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert_load_error(folder, "not a regular file")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    assert_load_error(path, "empty file")


@pytest.mark.parametrize(("suffix", "pil_format"), [(".jpg", "JPEG"), (".png", "PNG")])
def test_truncated_file(tmp_path: Path, suffix: str, pil_format: str) -> None:
    whole = encoded(ASTRONAUT, pil_format)
    path = tmp_path / f"truncated{suffix}"
    path.write_bytes(whole[: len(whole) // 2])
    assert_load_error(path, "truncated or corrupt")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert_load_error(path, "not a valid PNG file")  # the format it claims to be
    unnamed = tmp_path / "noise.bin"
    unnamed.write_bytes(path.read_bytes())
    assert_load_error(unnamed, "not a recognised image format")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture\n" * 20)
    assert_load_error(path, "not a valid JPEG file")


def test_a_corrupt_jpeg_is_not_called_another_format(tmp_path: Path) -> None:
    """Pillow's last guess on a damaged JPEG can be "not a TIFF file": the file claims JPEG."""
    whole = bytearray(encoded(ASTRONAUT, "JPEG"))
    whole[2:40] = bytes(38)  # the JPEG markers after SOI are gone
    path = tmp_path / "bicycles.jpg"
    path.write_bytes(bytes(whole))
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert "JPEG" in caught.value.reason and "TIFF" not in caught.value.reason


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.png"
    iio.imwrite(path, CAMERA)
    path.chmod(0)
    assert_load_error(path, "permission denied")


def test_over_max_pixels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "astronaut.png"
    iio.imwrite(path, ASTRONAUT)
    assert_load_error(path, "too large", max_pixels=1000)
    # Just over the limit: refused from the header, with the size in the message.
    assert_load_error(path, "512x512 = 262,144 pixels", max_pixels=512 * 512 - 1)
    assert load_image(path, max_pixels=512 * 512).shape == (512, 512, 3)


@pytest.mark.parametrize(("width", "height"), [(10_000, 8_001), (40_000, 40_000)])
def test_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, width: int, height: int
) -> None:
    # A few hundred bytes claiming a huge image: decoding it would fail as "truncated",
    # so "too large" shows the header was checked first.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(width, height, colour_type=0, bit_depth=8, rows=b"\x00" * 100))
    assert width * height > DEFAULT_MAX_PIXELS
    assert path.stat().st_size < 1000
    assert_load_error(path, "too large")


def test_pillow_limit_follows_max_pixels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "astronaut.png"
    iio.imwrite(path, ASTRONAUT)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a stricter global set elsewhere

    assert load_image(path).shape == (512, 512, 3)
    assert Image.MAX_IMAGE_PIXELS == 1000
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(("suffix", "pil_format"), [(".png", "PNG"), (".jpg", "JPEG")])
def test_corrupted_bytes_never_escape_as_other_errors(
    tmp_path: Path, suffix: str, pil_format: str
) -> None:
    original = np.frombuffer(encoded(ASTRONAUT[::4, ::4], pil_format), dtype=np.uint8)
    rng = np.random.default_rng(1)
    failures = 0
    for attempt in range(40):
        damaged = original.copy()
        where = rng.integers(0, 300 if attempt % 2 else damaged.size, size=8)
        damaged[where] = rng.integers(0, 256, size=8)
        path = tmp_path / f"damaged{attempt}{suffix}"
        path.write_bytes(damaged.tobytes())
        try:
            image = load_image(path)
        except ImageLoadError as error:
            assert path.name in str(error)
            failures += 1
        else:
            assert image.dtype == np.uint8
            assert image.ndim == 3
            assert image.shape[2] == 3
    assert failures > 0


def test_error_pickles_for_worker_processes() -> None:
    error = ImageLoadError(Path("/scans/photo.jpg"), "truncated or corrupt image (x)")

    copy = pickle.loads(pickle.dumps(error))

    assert copy.path == Path("/scans/photo.jpg")
    assert copy.reason == "truncated or corrupt image (x)"
    assert str(copy) == "photo.jpg: truncated or corrupt image (x)"


# --- bundled samples -----------------------------------------------------------------------


@pytest.mark.parametrize("path", SAMPLE_IMAGES, ids=lambda p: p.name[:40])
def test_samples_load_like_pillow(path: Path) -> None:
    with Image.open(path) as image:
        on_white = Image.new("RGBA", image.size, "white")
        expected = np.asarray(Image.alpha_composite(on_white, image.convert("RGBA")).convert("RGB"))

    loaded = load_image(path)

    assert_rgb8(loaded, expected.shape[:2])
    assert np.abs(loaded.astype(np.int16) - expected).max() <= 1


def test_samples_include_grey_and_alpha() -> None:
    modes = set()
    for path in SAMPLE_IMAGES:
        with Image.open(path) as image:
            modes.add(image.mode)
    assert {"L", "RGB", "RGBA"} <= modes


# --- writing -------------------------------------------------------------------------------


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "chelsea.png"

    save_image(target, CHELSEA)
    save_image(target, COFFEE)  # replaces the first one

    assert sorted(p.name for p in target.parent.iterdir()) == ["chelsea.png"]
    assert np.array_equal(iio.imread(target), COFFEE)


def test_failed_write_keeps_old_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old\n")

    def refuse(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new\n")

    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_atomic_writes(tmp_path: Path) -> None:
    text_path = atomic_write_text(tmp_path / "nested" / "notes.txt", "café\nline 2\n")
    bytes_path = atomic_write_bytes(tmp_path / "blob.bin", b"\x00\xff" * 10)

    assert text_path.read_bytes() == "café\nline 2\n".encode()
    assert bytes_path.read_bytes() == b"\x00\xff" * 10
    assert sorted(p.name for p in (tmp_path / "nested").iterdir()) == ["notes.txt"]


def test_atomic_write_with_a_very_long_name(tmp_path: Path) -> None:
    target = tmp_path / ("x" * 240 + ".csv")
    assert atomic_write_text(target, "ok").read_text() == "ok"


def test_save_refuses_to_overwrite_an_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = tmp_path / "scans" / "page.png"
    source.parent.mkdir()
    iio.imwrite(source, CHELSEA)
    before = source.read_bytes()
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ValueError, match="refusing to overwrite"):
        save_image(Path("scans/../scans/page.png"), COFFEE, inputs=[source])

    assert source.read_bytes() == before


def test_save_grey(tmp_path: Path) -> None:
    path = save_image(tmp_path / "camera.png", CAMERA)
    assert Image.open(path).mode == "L"
    assert np.array_equal(iio.imread(path), CAMERA)


def test_jpeg_quality_is_used(tmp_path: Path) -> None:
    low = save_image(tmp_path / "low.jpg", ASTRONAUT, quality=30)
    high = save_image(tmp_path / "high.jpg", ASTRONAUT)

    assert low.stat().st_size < high.stat().st_size / 2
    assert mean_abs_diff(load_image(high), ASTRONAUT) < mean_abs_diff(load_image(low), ASTRONAUT)


@pytest.mark.parametrize(
    ("image", "name", "message"),
    [
        (ASTRONAUT.astype(np.float64) / 255, "a.png", "uint8"),
        (ASTRONAUT.astype(np.uint16), "a.png", "uint8"),
        (np.dstack([ASTRONAUT, CAMERA]), "a.png", r"\(H, W, 3\)"),
        (ASTRONAUT[..., :1], "a.png", r"\(H, W, 3\)"),
        (ASTRONAUT[:0], "a.png", r"\(H, W, 3\)"),
        (ASTRONAUT, "a.xyz", "unsupported image suffix"),
        (ASTRONAUT, "a", "unsupported image suffix"),
    ],
)
def test_save_rejects_bad_input(tmp_path: Path, image: np.ndarray, name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        save_image(tmp_path / name, image)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_bad_quality(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quality"):
        save_image(tmp_path / "a.jpg", ASTRONAUT, quality=0)


# --- finding files -------------------------------------------------------------------------


def test_iter_image_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "scans"
    for name in [
        "b.JPG",
        "a.png",
        "notes.txt",
        ".hidden.png",
        "._a.png",
        "sub/c.TIFF",
        "sub/deeper/d.webp",
        "sub/deeper/e.gif",
        ".cache/f.png",
        "g.bmp",
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    (root / "folder.jpg").mkdir()
    single = tmp_path / "single.jpeg"
    stray = tmp_path / "readme.txt"
    single.write_bytes(b"x")
    stray.write_bytes(b"x")
    monkeypatch.chdir(tmp_path)

    found = iter_image_files(["scans", single, "readme.txt", root / "a.png", "scans"])

    assert found == [
        (root / "a.png", Path("a.png")),
        (root / "b.JPG", Path("b.JPG")),
        (root / "g.bmp", Path("g.bmp")),
        (root / "sub" / "c.TIFF", Path("sub/c.TIFF")),
        (root / "sub" / "deeper" / "d.webp", Path("sub/deeper/d.webp")),
        (root / "sub" / "deeper" / "e.gif", Path("sub/deeper/e.gif")),
        (single, Path("single.jpeg")),
        (stray, Path("readme.txt")),
    ]
    assert all(path.is_absolute() for path, _ in found)


def test_iter_image_files_missing_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        iter_image_files([tmp_path / "no_such_folder"])


def test_image_suffixes() -> None:
    expected = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".jp2", ".j2k"}
    expected |= {".avif"}
    assert expected == IMAGE_SUFFIXES
    assert isinstance(IMAGE_SUFFIXES, frozenset)
