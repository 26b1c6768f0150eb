"""The HTML report lists every input, offline, with working filter data."""

from __future__ import annotations

import re

from skimage import data

from scancap.pipeline.report import report_chunks, thumbnail_data_uri


def test_report_lists_every_row_with_thumbnails_and_errors() -> None:
    rows = [
        {"path": "a.jpg", "status": "ok", "is_photo": True, "p_photo": 0.97,
         "subtype": "photo", "caption": "a cat on a <sofa>"},
        {"path": "b.png", "status": "ok", "is_photo": False, "p_photo": 0.02,
         "subtype": "text", "caption": ""},
        {"path": "c.jpg", "status": "error", "error": "c.jpg: truncated or corrupt image"},
    ]  # fmt: skip
    thumbnail = thumbnail_data_uri(data.chelsea())
    thumbnails = {"a.jpg": [thumbnail, thumbnail]}
    page = "".join(report_chunks(rows, lambda path: thumbnails.get(path, [])))
    assert thumbnail.startswith("data:image/jpeg;base64,")
    assert page.count("data-klass=") == 3
    assert re.findall(r'data-klass="(\w+)"', page) == ["photo", "text", "error"]
    assert "a cat on a &lt;sofa&gt;" in page and "truncated or corrupt" in page
    assert "http://" not in page and "https://" not in page
    assert page.count(thumbnail) == 2
