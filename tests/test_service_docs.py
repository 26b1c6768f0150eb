"""The service's /docs page as a person sees it: Swagger UI rendering the OpenAPI 3.1 schema
FastAPI publishes, offline, in headless Chromium (its operations listed, no error)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from scancap.service import create_app
from scancap_lab.browser import MISSING, chromium_available, headless_chromium

pytestmark = pytest.mark.skipif(not chromium_available(), reason=MISSING)


@pytest.fixture(scope="module")
def docs_url() -> Iterator[str]:
    """The app on a free loopback port, without loading models (the docs need none)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(pipeline=object()), host="127.0.0.1", port=port, lifespan="off",
        log_level="error",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/docs"
    server.should_exit = True
    thread.join(10)


def test_the_docs_render_every_operation_offline(docs_url: str) -> None:
    with headless_chromium() as browser:
        browser.get(docs_url)
        WebDriverWait(browser, 20).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        )
        paths = {
            e.text.strip() for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        }
        page = browser.find_element(By.TAG_NAME, "body").text
    assert {"/v1/analyze", "/v1/corrections", "/healthz", "/version"} <= paths
    assert "Unable to render this definition" not in page
    assert "OAS 3.1" in page
