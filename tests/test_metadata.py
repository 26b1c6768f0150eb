"""Restored files keep what archives keep: resolution, colour profile, EXIF, greyscale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from scancap.cli import main
from scancap.metadata import ORIENTATION_TAG, read_metadata

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DATE_TAG, MAKE_TAG = 0x0132, 0x010F


def scan_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION_TAG], exif[DATE_TAG], exif[MAKE_TAG] = (
        orientation,
        "1931:05:04 10:00:00",
        "Epson",
    )
    return exif


def test_a_grey_300_dpi_tiff_comes_back_grey_with_its_dpi_profile_and_exif(tmp_path: Path) -> None:
    grey = Image.open(SAMPLES / "photo_Old_Tom_Morris.png").convert("L")
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / "in" / "scan.tif"
    source.parent.mkdir()
    grey.save(source, dpi=(300, 300), icc_profile=profile, exif=scan_exif(1))
    assert main(["restore", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    with Image.open(tmp_path / "out" / "scan.tif") as restored:
        assert restored.mode == "L"
        assert tuple(round(float(v)) for v in restored.info["dpi"]) == (300, 300)
        assert restored.info["icc_profile"] == profile
        exif = restored.getexif()
        assert exif[DATE_TAG] == "1931:05:04 10:00:00" and exif[MAKE_TAG] == "Epson"


def test_exif_orientation_is_applied_to_the_pixels_and_reset_in_the_output(tmp_path: Path) -> None:
    photo = Image.open(SAMPLES / "photo_200557981_f800fa1af9.jpg")
    source = tmp_path / "in" / "sideways.jpg"
    source.parent.mkdir()
    photo.save(source, quality=95, exif=scan_exif(6), dpi=(600, 600))
    out = tmp_path / "out"
    code = main(["restore", str(source), "--out", str(out), "--mode", "none", "--quiet"])
    assert code == 0
    with Image.open(out / "sideways.jpg") as restored:
        assert restored.size == (photo.height, photo.width)  # turned upright
        assert restored.getexif()[ORIENTATION_TAG] == 1
        assert restored.getexif()[DATE_TAG] == "1931:05:04 10:00:00"
        assert tuple(round(float(v)) for v in restored.info["dpi"]) == (600, 600)
    assert read_metadata(out / "sideways.jpg").grey is False


def test_metadata_of_an_unreadable_file_is_empty(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(b"nothing")
    assert read_metadata(tmp_path / "x.jpg") == read_metadata(tmp_path / "missing.jpg")
    assert np.isscalar(read_metadata(tmp_path / "x.jpg").grey)
