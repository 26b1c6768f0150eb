"""The report as a person sees it: opened from `file://` in headless Chromium, filtered,
searched, sorted and paged, with assertions on the rendered page and a screenshot."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from scancap.cli import main
from scancap.io import load_image
from scancap.ocr.engine import tesseract_problem
from scancap.pipeline.report import REPORT_FILE, write_report
from scancap_lab.browser import MISSING, chromium_available, headless_chromium
from scancap_lab.fuzz_inputs import jpeg_with_unreadable_exif
from scancap_lab.report_data import synthetic_rows

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OLD_SCAN = "photo_1890s_unreadable_exif.jpg"
LONG_NAME = "photo_" + "very_long_scanner_file_name_" * 6 + "0001.jpg"
pytestmark = pytest.mark.skipif(not chromium_available(), reason=MISSING)


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def run_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`scancap run` on the samples, a photo with a long name, a tricky name and a broken file."""
    folder = tmp_path_factory.mktemp("report-run")
    batch = folder / "batch"
    shutil.copytree(SAMPLES, batch, ignore=shutil.ignore_patterns("*.md", "*.txt"))
    shutil.copy(batch / "photo_Building.png", batch / LONG_NAME)
    shutil.copy(batch / "photo_David_Hilbert.png", batch / "a <b>bold<b> & #1 name?.png")
    (batch / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    portrait = load_image(SAMPLES / "photo_Old_Tom_Morris.png")
    (batch / OLD_SCAN).write_bytes(jpeg_with_unreadable_exif(portrait))
    assert main(["run", str(batch), "--out", str(folder / "out"), "--quiet"]) == 1
    return folder / "out"


def shown(driver, previous: str | None = None) -> list:
    """The cards once the page has (re)drawn them."""
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.body.dataset.shownAt") not in (None, previous)
    )
    return driver.find_elements(By.CSS_SELECTOR, ".card")


def redraw(driver, action) -> list:
    """Do something to the controls and return the cards drawn after it."""
    before = driver.execute_script("return document.body.dataset.shownAt")
    driver.execute_script("document.body.dataset.shownAt = 'stale'")
    action()
    return shown(driver, "stale") if before is not None else shown(driver)


def test_the_report_of_a_run_filters_searches_sorts_and_labels_its_images(
    browser, run_out: Path
) -> None:
    manifest = pd.read_csv(run_out / "manifest.csv", keep_default_na=False)
    browser.get((run_out / REPORT_FILE).as_uri())
    cards = shown(browser)
    assert len(cards) == len(manifest)
    assert browser.find_element(By.CSS_SELECTOR, "dl.summary").text.count("errors\n1") == 1
    names = [card.find_element(By.CSS_SELECTOR, ".name").text for card in cards]
    assert names == list(manifest["path"])  # a tricky name is shown as text, not markup
    for card in cards:  # long names wrap inside their card
        assert browser.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth", card
        )

    photos = manifest[manifest["is_photo"] == "True"]
    cards = redraw(
        browser, lambda: Select(browser.find_element(By.ID, "klass")).select_by_value("photo")
    )
    assert len(cards) == len(photos) >= 6
    for card, row in zip(cards, photos.itertuples(), strict=True):
        labels = [c.text for c in card.find_elements(By.CSS_SELECTOR, "figcaption")]
        restored = row.denoiser not in ("", "none") or row.sharpener not in ("", "none")
        assert labels == (["before", "after"] if restored else ["unchanged"]), row.path
        for image in card.find_elements(By.TAG_NAME, "img"):
            assert browser.execute_script("return arguments[0].naturalWidth", image) > 0
        link = card.find_element(By.LINK_TEXT, "full-size output").get_attribute("href")
        assert unquote(link).endswith(row.output) and (run_out / row.output).is_file()
        assert "noise σ" in card.text and "seconds" in card.text
    assert any(len(c.find_elements(By.TAG_NAME, "img")) == 2 for c in cards)

    cards = redraw(
        browser, lambda: Select(browser.find_element(By.ID, "order")).select_by_value("desc")
    )
    shown_p = photos["p_photo"].astype(float).round(4)  # the report sorts what it shows
    expected = photos.assign(p=shown_p).sort_values("p", ascending=False, kind="stable")["path"]
    assert [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards] == list(expected)

    Select(browser.find_element(By.ID, "klass")).select_by_value("all")
    search = browser.find_element(By.ID, "search")
    cards = redraw(browser, lambda: search.send_keys("flower"))
    hay = manifest["path"] + " " + manifest["caption"] + " " + manifest["tags"] + " "
    hay += manifest["object_counts"] + " " + manifest["title"]
    assert 0 < len(cards) == hay.str.lower().str.contains("flower").sum()
    search.clear()
    _check_object_boxes(browser, manifest)
    cards = redraw(
        browser, lambda: Select(browser.find_element(By.ID, "status")).select_by_value("error")
    )
    assert [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards] == ["broken.jpg"]
    assert "error: " in cards[0].text
    Select(browser.find_element(By.ID, "status")).select_by_value("all")
    _check_text_cards(browser, run_out, manifest)
    cards = redraw(
        browser, lambda: Select(browser.find_element(By.ID, "klass")).select_by_value("photo")
    )
    browser.save_screenshot(str(run_out / "report-screenshot.png"))
    assert (run_out / "report-screenshot.png").stat().st_size > 10_000


def _check_object_boxes(browser, manifest: pd.DataFrame) -> None:
    """A search finds photos by what the detector counted, and "object boxes" draws each
    detection over the photo, labelled, inside the picture."""
    search = browser.find_element(By.ID, "search")
    cards = redraw(browser, lambda: search.send_keys("person"))
    fields = ("path", "caption", "tags", "object_counts", "title")
    hay = manifest[list(fields)].fillna("").agg(" ".join, axis=1).str.lower()
    assert 0 < len(cards) == hay.str.contains("person").sum()
    assert not cards[0].find_elements(By.CSS_SELECTOR, ".box")  # boxes only on request
    cards = redraw(browser, lambda: browser.find_element(By.ID, "boxes").click())
    card = next(c for c in cards if c.find_element(By.CSS_SELECTOR, ".name").text
                == "photo_Old_Tom_Morris.png")  # fmt: skip
    assert "objects: 1 person" in card.text
    box = card.find_element(By.CSS_SELECTOR, "figure .box")
    assert box.text.startswith("person 0.")
    picture = card.find_element(By.CSS_SELECTOR, "figure img").rect
    inner = box.rect
    assert (
        picture["x"] <= inner["x"]
        and inner["x"] + inner["width"] <= picture["x"] + picture["width"] + 1
    )
    assert 0.2 * picture["height"] < inner["height"] <= picture["height"] + 1
    redraw(browser, lambda: browser.find_element(By.ID, "boxes").click())
    search.clear()


def _check_text_cards(browser, run_out: Path, manifest: pd.DataFrame) -> None:
    """Text pages' cards show the first lines OCR read, linked to the whole text."""
    texts = manifest[(manifest["subtype"] == "text") & (manifest["text"] != "")]
    if tesseract_problem():
        return  # nothing was read: run_out's text pages have no text
    cards = redraw(
        browser, lambda: Select(browser.find_element(By.ID, "klass")).select_by_value("text")
    )
    assert len(texts) >= 3 and len(cards) == (manifest["subtype"] == "text").sum()
    shown_texts = {c.find_element(By.CSS_SELECTOR, ".name").text:
                   c.find_element(By.CSS_SELECTOR, "pre.text").text for c in cards}  # fmt: skip
    for row in texts.itertuples():
        assert shown_texts[row.path].splitlines()[0] == row.title
        card = next(c for c in cards if c.find_element(By.CSS_SELECTOR, ".name").text == row.path)
        link = card.find_element(By.LINK_TEXT, "text").get_attribute("href")
        assert Path(unquote(urlparse(link).path)).read_text().strip() == row.text.strip()
        assert "OCR confidence" in card.text and "language" in card.text


def test_a_large_report_pages_through_its_rows(browser, tmp_path: Path) -> None:
    rows = synthetic_rows(2345)
    write_report(tmp_path, rows, lambda path: [], lambda path: "", [("inputs", "2345")])
    browser.get((tmp_path / REPORT_FILE).as_uri())
    cards = shown(browser)
    assert len(cards) == 50 and "2345 matching · page 1 of 47" in browser.page_source
    cards = redraw(browser, lambda: browser.find_element(By.ID, "next").click())
    assert cards[0].find_element(By.CSS_SELECTOR, ".name").text == "scan_00050.jpg"
    for _ in range(44):
        browser.find_element(By.ID, "next").click()
    cards = redraw(browser, lambda: browser.find_element(By.ID, "next").click())
    assert len(cards) == 2345 - 46 * 50 and not browser.find_element(By.ID, "next").is_enabled()
    search = browser.find_element(By.ID, "search")
    cards = redraw(browser, lambda: search.send_keys("cat number 2001"))
    assert [c.find_element(By.CSS_SELECTOR, ".name").text for c in cards] == ["scan_02001.jpg"]


def test_needs_review_first_shows_the_doubtful_large_and_corrections_download_as_a_csv(
    browser, run_out: Path, tmp_path: Path
) -> None:
    from scancap.classify.corrections import read_corrections

    manifest = pd.read_parquet(run_out / "manifest.parquet")
    doubtful = manifest[manifest["needs_review"] == True]  # noqa: E712 (None: not classified)
    assert len(doubtful) >= 1  # David Hilbert, a photo the classifier hesitates over
    browser.get((run_out / REPORT_FILE).as_uri())
    shown(browser)
    cards = redraw(
        browser, lambda: Select(browser.find_element(By.ID, "review")).select_by_value("needs")
    )
    first = cards[: len(doubtful)]
    names = [card.find_element(By.CSS_SELECTOR, ".name").text for card in first]
    assert sorted(names) == sorted(doubtful["path"])
    for card in first:
        assert "review" in card.get_attribute("class").split()
        badges = [b.text for b in card.find_elements(By.CSS_SELECTOR, ".badge")]
        assert "needs review" in badges
        image = card.find_element(By.CSS_SELECTOR, "figure img")
        assert image.size["width"] > 320 or image.size["height"] > 320  # large enough to judge
    assert "review" not in cards[len(doubtful)].get_attribute("class").split()
    first[0].find_element(By.CSS_SELECTOR, "button[data-label=photo]").click()
    rest = [c for c in cards[len(doubtful) :] if c.find_elements(By.CSS_SELECTOR, ".verdict")]
    rest[0].find_element(By.CSS_SELECTOR, "button[data-label=painting]").click()
    assert browser.find_element(By.ID, "download").text == "download corrections (2)"
    corrections = tmp_path / "corrections.csv"
    corrections.write_text(browser.execute_script("return correctionsCsv()"))
    read = read_corrections([corrections])
    by_name = dict(zip(read["location"], read["label"], strict=True))
    marked = manifest.set_index("path").loc[names[0], "file"]
    assert by_name[marked] == "photo" and sorted(by_name.values()) == ["painting", "photo"]


def test_every_card_names_its_class_and_p_photo_at_a_glance(browser, run_out: Path) -> None:
    manifest = pd.read_csv(run_out / "manifest.csv", keep_default_na=False)
    browser.get((run_out / REPORT_FILE).as_uri())
    cards = shown(browser)
    badges = [card.find_element(By.CSS_SELECTOR, ".badge.klass").text for card in cards]
    for (_, row), badge in zip(manifest.iterrows(), badges, strict=True):
        klass = (
            "error"
            if row["status"] == "error"
            else ("photo" if row["is_photo"] == "True" else row["subtype"])
        )
        assert badge.startswith(klass), (row["path"], badge)
        if row["p_photo"] != "":
            assert f"p(photo) {float(row['p_photo']):.2f}" in badge


def test_cards_fill_the_page_in_one_size_and_say_what_a_row_notes(
    browser, run_out: Path, tmp_path: Path
) -> None:
    browser.get((run_out / REPORT_FILE).as_uri())
    cards = shown(browser)
    widths = [card.size["width"] for card in cards]
    assert max(widths) - min(widths) <= 1  # one size, a restored photo's two images included
    grid = browser.find_element(By.ID, "cards")
    right = max(card.location["x"] + card.size["width"] for card in cards)
    assert abs(right - (grid.location["x"] + grid.size["width"])) <= 2  # the rows fill the page
    assert len({card.location["x"] for card in cards}) >= 3  # at 1400 px: three or more columns
    error = next(c for c in cards if "error" in c.get_attribute("class").split())
    assert error.size["height"] < min(c.size["height"] for c in cards if c != error) / 2
    scan = next(c for c in cards if c.find_element(By.CSS_SELECTOR, ".name").text == OLD_SCAN)
    note = scan.find_element(By.CSS_SELECTOR, ".note").text
    assert note == "note: unreadable metadata dropped, pixels kept: EXIF (not a TIFF file)"
    assert "photo" in scan.find_element(By.CSS_SELECTOR, ".badge.klass").text
    browser.save_screenshot(str(tmp_path / "grid.png"))
