"""OCR on pages whose text is known: rendered prose, degraded like scans, read by Tesseract; and
the pipeline's text outputs (manifest, texts/, searchable PDFs, report) on real runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pypdfium2 as pdfium
import pytest
from PIL import Image

from scancap.cli import main
from scancap.ocr import engine, reader
from scancap.ocr.engine import OcrError, detect_language, prepare, read_page, tesseract_problem
from scancap.ocr.preprocess import estimate_skew
from scancap_lab.ocr.synthetic import degrade, error_rates, render_page
from scancap_lab.report_data import script_argument

PROSE_FILE = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "ocr_prose.json"
PROSE = {passage["id"]: passage for passage in json.loads(PROSE_FILE.read_text())}
needs_tesseract = pytest.mark.skipif(bool(tesseract_problem()), reason=tesseract_problem())


@pytest.fixture(scope="module")
def english() -> tuple[np.ndarray, str]:
    return render_page([PROSE["austen"]["text"], PROSE["dickens"]["text"]], "DejaVu Serif")


@pytest.fixture(scope="module")
def french() -> tuple[np.ndarray, str]:
    return render_page([PROSE["voltaire"]["text"], PROSE["hugo"]["text"]], "STIX (Times-like)")


def test_error_rates_count_edits_over_the_reference() -> None:
    assert error_rates("the cat sat", "the cat sat") == (0.0, 0.0)
    cer, wer = error_rates("the cat sat", "the bat  sat\n")
    assert cer == pytest.approx(1 / 11) and wer == pytest.approx(1 / 3)
    assert error_rates("abc", "") == (1.0, 1.0)


def test_the_language_is_told_by_function_words() -> None:
    assert detect_language(PROSE["austen"]["text"]) == "eng"
    assert detect_language(PROSE["flaubert"]["text"]) == "fra"
    kafka = ("Als Gregor Samsa eines Morgens aus unruhigen Träumen erwachte, fand er sich in "
             "seinem Bett zu einem ungeheueren Ungeziefer verwandelt. Er lag auf seinem "
             "panzerartig harten Rücken und sah, wenn er den Kopf ein wenig hob, seinen "
             "gewölbten, braunen, von bogenförmigen Versteifungen geteilten Bauch.")  # fmt: skip
    assert detect_language(kafka) == "deu"
    assert detect_language("INVOICE 42  Total 13.50") == ""


def test_the_skew_of_a_turned_page_is_found(english: tuple[np.ndarray, str]) -> None:
    page, _ = english
    for degrees in (-2.5, 1.2, 3.0):
        assert estimate_skew(_turned(page, degrees)) == pytest.approx(-degrees, abs=0.15)


def test_a_blank_or_tiny_page_is_not_turned() -> None:
    assert estimate_skew(np.full((3000, 2000), 255, np.uint8)) == 0.0
    assert estimate_skew(np.full((3000, 2000), 0, np.uint8)) == 0.0
    assert estimate_skew(np.zeros((1, 2000), np.uint8)) == 0.0


def _turned(page: np.ndarray, degrees: float) -> np.ndarray:
    return np.asarray(Image.fromarray(page).rotate(degrees, fillcolor=255, resample=Image.BILINEAR))


@needs_tesseract
def test_a_clean_english_page_is_read_word_for_word(english: tuple[np.ndarray, str]) -> None:
    page, truth = english
    result = read_page(page, dpi=300)
    cer, wer = error_rates(truth, result.text)
    assert cer < 0.01 and wer < 0.02, result.text[:300]
    assert result.language == "eng" and result.confidence > 85
    assert result.title == truth.splitlines()[0]


@needs_tesseract
def test_a_french_page_keeps_its_accents(french: tuple[np.ndarray, str]) -> None:
    page, truth = french
    result = read_page(page, dpi=300)
    assert error_rates(truth, result.text)[0] < 0.01
    assert result.language == "fra"
    assert "mœurs" in result.text and "évêque" in result.text


@needs_tesseract
def test_a_skewed_unevenly_lit_noisy_scan_is_straightened_and_read(
    english: tuple[np.ndarray, str],
) -> None:
    page, truth = english
    scan = degrade(page, "scan", seed=4)  # lighting falling to 55%, blur, noise, JPEG, skew
    raw = error_rates(truth, read_page(scan, preprocessing="none").text)[0]
    assert error_rates(truth, read_page(scan, dpi=300).text)[0] < 0.05 < raw
    assert prepare(scan)[1] == pytest.approx(-2.66, abs=0.15)  # seed 4 turned it 2.66°


@needs_tesseract
def test_a_page_over_its_time_limit_is_an_error_that_says_so(
    english: tuple[np.ndarray, str],
) -> None:
    with pytest.raises(OcrError, match="timed out after 0.2 s"):
        read_page(english[0], time_limit=0.2)


@pytest.fixture
def no_tesseract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tesseract's program missing for one test (the cached answer forgotten both ways)."""
    monkeypatch.setattr(engine.pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    engine.tesseract_problem.cache_clear()
    yield
    engine.tesseract_problem.cache_clear()


def test_without_tesseract_the_reason_names_the_packages(no_tesseract: None) -> None:
    problem = tesseract_problem()
    assert problem.startswith("Tesseract is not installed") and "tesseract-ocr-fra" in problem
    with pytest.raises(OcrError, match="not installed"):
        read_page(np.full((64, 64, 3), 255, np.uint8))


@needs_tesseract
def test_capitalised_script_models_count_as_installed() -> None:
    installed = engine.installed_languages()
    assert {"eng", "fra"} <= installed and "osd" in installed
    if "Fraktur" in installed:  # Debian's tesseract-ocr-script-frak, which make setup installs
        assert tesseract_problem("deu+Fraktur") == ""
    assert "klingon" in tesseract_problem("eng+klingon")


def _scans(folder: Path, english: tuple[np.ndarray, str], french: tuple[np.ndarray, str]) -> Path:
    """A scanner's PDF of an English page (degraded), a French page as PNG, a photo and a
    schematic from the samples."""
    folder.mkdir()
    samples = Path(__file__).resolve().parents[2] / "samples"
    Image.fromarray(degrade(english[0], "scan", seed=3)).save(folder / "letter.pdf",
                                                               resolution=300)  # fmt: skip
    Image.fromarray(french[0]).save(folder / "lettre.png", dpi=(300, 300))
    for name in ("photo_Building.png", "schematic_morphology_binary_dilation_erosion.png"):
        (folder / name).write_bytes((samples / name).read_bytes())
    return folder


@needs_tesseract
@pytest.mark.slow
def test_run_reads_text_pages_into_the_manifest_files_pdfs_and_report(
    tmp_path: Path, english: tuple[np.ndarray, str], french: tuple[np.ndarray, str]
) -> None:
    batch, out = _scans(tmp_path / "batch", english, french), tmp_path / "out"
    assert main(["run", str(batch), "--out", str(out), "--searchable-pdf", "--quiet"]) == 0
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("path")
    for name, (_, truth), language in (("letter.pdf#page=1", english, "eng"),
                                       ("lettre.png", french, "fra")):  # fmt: skip
        row = manifest.loc[name]
        assert row["subtype"] == "text" and row["language"] == language
        assert error_rates(truth, row["text"])[0] < 0.05
        assert row["title"] == truth.splitlines()[0] and row["ocr_confidence"] > 80
        assert (out / row["text_file"]).read_text() == row["text"] + "\n"
        document = pdfium.PdfDocument(out / row["text_pdf"])
        width, height = document[0].get_size()
        # A4 in points, the page's own size, also once straightened (this one by 2.5°)
        assert width == pytest.approx(595.3, abs=1) and height == pytest.approx(841.9, abs=1)
        layer = document[0].get_textpage().get_text_range()
        assert error_rates(truth, layer)[0] < 0.05  # the invisible text is the page's text
        assert row["seconds_ocr"] > 0
    assert manifest.loc["letter.pdf#page=1", "text_file"] == "texts/letter.page-1.pdf.txt"
    assert manifest.loc["lettre.png", "text_pdf"] == "searchable/lettre.png.pdf"
    for name in ("photo_Building.png", "schematic_morphology_binary_dilation_erosion.png"):
        assert manifest.loc[name, "text"] == "" and manifest.loc[name, "text_file"] == ""
    (index,) = script_argument(out / "report" / "index.js", "scancapIndex")
    assert english[1].splitlines()[0] in index["title"]
    _, cards = script_argument(out / "report" / "details" / "0000.js", "scancapDetails")
    letter = next(card for card in cards if card["path"] == "letter.pdf#page=1")
    assert letter["text"].startswith("It is a truth universally acknowledged")
    assert (out / letter["text_pdf"]).is_file() and ("language", "eng") in map(
        tuple, letter["measures"]
    )


@needs_tesseract
@pytest.mark.slow
def test_ocr_can_be_turned_off_or_extended_to_every_non_photo(
    tmp_path: Path, english: tuple[np.ndarray, str], french: tuple[np.ndarray, str]
) -> None:
    batch = _scans(tmp_path / "batch", english, french)
    assert main(["run", str(batch), "--out", str(tmp_path / "off"), "--ocr", "off", "--quiet"]) == 0
    off = pd.read_parquet(tmp_path / "off" / "manifest.parquet")
    assert set(off["text"]) == {""} and not (tmp_path / "off" / "texts").exists()
    every = ["run", str(batch), "--out", str(tmp_path / "all"), "--ocr", "all-non-photos"]
    assert main([*every, "--quiet"]) == 0
    rows = pd.read_parquet(tmp_path / "all" / "manifest.parquet").set_index("path")
    schematic = rows.loc["schematic_morphology_binary_dilation_erosion.png"]
    assert schematic["text_file"] and re.search(r"[A-Za-z]{3}", schematic["text"])
    assert rows.loc["photo_Building.png", "text"] == ""  # photos are captioned, never OCR'd


@needs_tesseract
@pytest.mark.slow
def test_a_page_whose_reading_fails_keeps_its_class_and_outputs_and_says_why(
    tmp_path: Path,
    english: tuple[np.ndarray, str],
    french: tuple[np.ndarray, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = _scans(tmp_path / "batch", english, french)
    out = tmp_path / "out"
    args = ["run", str(batch), "--out", str(out), "--copy-non-photos", "--ocr-time-limit", "0.05"]
    assert main(args) == 1  # the two text pages are errors of their own; the batch went on
    rows = pd.read_parquet(out / "manifest.parquet").set_index("path")
    for name in ("letter.pdf#page=1", "lettre.png"):
        row = rows.loc[name]
        assert row["status"] == "ok" and row["subtype"] == "text" and row["text"] == ""
        assert row["error"] == "OCR: timed out after 0.05 s" and (out / row["output"]).is_file()
    assert rows.loc["photo_Building.png", "caption"] and "errors: 2" in capsys.readouterr().out

    def broken(*args: object, **kwargs: object) -> None:
        raise cv2.error("OpenCV(4) error: (-215:Assertion failed) !ssize.empty()")

    monkeypatch.setattr(reader, "read_page", broken)
    assert main(["run", str(batch), "--out", str(tmp_path / "again"), "--quiet"]) == 1
    again = pd.read_parquet(tmp_path / "again" / "manifest.parquet").set_index("path")
    assert again.loc["lettre.png", "error"] == (
        "OCR: failed (error: OpenCV(4) error: (-215:Assertion failed) !ssize.empty())"
    )


@pytest.mark.slow
def test_a_run_without_tesseract_says_so_once_and_sorts_everything(
    tmp_path: Path,
    english: tuple[np.ndarray, str],
    french: tuple[np.ndarray, str],
    no_tesseract: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = _scans(tmp_path / "batch", english, french)
    assert main(["run", str(batch), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("note: text pages will not be read: Tesseract is not installed") == 1
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert len(manifest) == 4 and set(manifest["status"]) == {"ok"}
    assert set(manifest["text"]) == {""}


def test_the_default_preprocessing_is_the_one_the_benchmark_chose() -> None:
    report = (Path(__file__).resolve().parents[2] / "reports" / "ocr.md").read_text()
    (chosen,) = re.findall(r"Chosen: \*\*(.+?)\*\*", report)
    assert chosen == engine.DEFAULT_PREPROCESSING
