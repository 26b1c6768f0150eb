"""The README's picture of the report: a run's `report.html` as headless Chromium shows it.

    python -m scancap_lab.report_picture out/demo/report.html reports/figures/report.png

`make report-picture` runs the demo on `samples/` first, then takes this picture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from scancap_lab.browser import headless_chromium

WIDTH, HEIGHT = 1280, 1300  # the summary, the controls and two rows of cards


def take_picture(report: Path, target: Path, klass: str = "photo") -> Path:
    """A PNG of the report's first screen, its cards filtered to `klass` (photos show their
    restoration and captions), once they are drawn."""
    with headless_chromium(WIDTH, HEIGHT) as browser:
        browser.get(report.resolve().as_uri())
        wait = WebDriverWait(browser, 30)
        wait.until(lambda driver: driver.execute_script("return document.body.dataset.shownAt"))
        browser.execute_script("document.body.dataset.shownAt = 'stale'")
        Select(browser.find_element(By.ID, "klass")).select_by_value(klass)
        wait.until(
            lambda driver: driver.execute_script("return document.body.dataset.shownAt") != "stale"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(target))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a run's report.html")
    parser.add_argument("target", type=Path, help="the PNG to write")
    args = parser.parse_args()
    print(f"wrote {take_picture(args.report, args.target)}")


if __name__ == "__main__":
    main()
