"""Headless Chromium (Debian's `chromium` and `chromium-driver`) driven by Selenium.

Shared by the report's browser test and the report benchmark. The browser is the system's:
Selenium is told where it is, so nothing is downloaded at run time.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

BINARIES = ("chromium", "chromedriver")
MISSING = (
    "headless Chromium is not installed (Debian packages chromium and chromium-driver; "
    "`make setup` installs them when run as root)"
)


def chromium_available() -> bool:
    """Whether both the browser and its driver are on PATH."""
    return all(shutil.which(name) for name in BINARIES)


@contextmanager
def headless_chromium(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A Selenium WebDriver on the system's Chromium, closed at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()
