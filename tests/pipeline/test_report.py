"""The HTML report's files: a small page, column data for every row, detail shards, WebP
thumbnails; nothing fetched from the network."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from scancap.pipeline.report import (
    REPORT_FILE,
    SHARD_ROWS,
    encode_thumbnail,
    row_measures,
    write_report,
    write_thumbnails,
)
from scancap_lab.report_data import script_argument, synthetic_rows


def test_the_report_is_a_small_page_with_every_row_in_column_data_and_shards(
    tmp_path: Path,
) -> None:
    rows = synthetic_rows(2 * SHARD_ROWS + 7)
    thumbs = write_thumbnails(tmp_path, "scan_00000.jpg", [("before", data.chelsea())])
    page = write_report(
        tmp_path, rows, lambda path: thumbs, lambda path: f"file:///in/{path}", [("inputs", "3")]
    )
    assert page == tmp_path / REPORT_FILE and page.stat().st_size < 20_000
    (index,) = script_argument(tmp_path / "report" / "index.js", "scancapIndex")
    assert index["path"] == [row["path"] for row in rows]
    assert [index["classes"][k] for k in index["klass"][:3]] == ["photo", "text", "error"]
    assert [index["statuses"][s] for s in index["status"][:3]] == ["ok", "ok", "error"]
    assert index["caption"][0] == "a cat number 0" and index["shard"] == SHARD_ROWS
    shards = sorted((tmp_path / "report" / "details").iterdir())
    assert [p.name for p in shards] == ["0000.js", "0001.js", "0002.js"]
    number, details = script_argument(shards[2], "scancapDetails")
    assert number == 2 and len(details) == 7
    assert details[0]["path"] == rows[2 * SHARD_ROWS]["path"]
    assert details[0]["thumbs"] == [["before", thumbs[0][1]]]
    assert details[0]["source"] == f"file:///in/{rows[2 * SHARD_ROWS]['path']}"
    for path in [page, *shards, tmp_path / "report" / "index.js"]:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text


def test_a_photo_card_shows_its_measures_decisions_and_timings() -> None:
    measures = dict(row_measures(synthetic_rows(1)[0] | {"seconds_restore": 0.25}))
    assert measures["noise σ"] == "9.00 → 2.00" and measures["edge blur"] == "1.200 → 0.900"
    assert "denoised (gaussian, σ=1.0)" in measures["restoration"]
    assert "restore 0.250" in measures["seconds"] and measures["size"] == "640 × 480 px"
    assert row_measures(synthetic_rows(3)[2]) == []  # an error row has no measures


def test_thumbnails_are_small_webp_files_of_the_image() -> None:
    image = data.astronaut()  # 512 x 512
    encoded = encode_thumbnail(image[:, :400])
    assert encoded[:4] == b"RIFF" and encoded[8:12] == b"WEBP" and len(encoded) < 40_000
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(encoded, np.uint8), 1), cv2.COLOR_BGR2RGB)
    assert decoded.shape == (320, 250, 3)
    small = cv2.resize(image[:, :400], (250, 320), interpolation=cv2.INTER_AREA)
    assert np.abs(decoded.astype(int) - small).mean() < 6


def test_a_smooth_page_card_says_no_edges_to_measure() -> None:
    from scancap.pipeline.report import row_measures

    row = {"status": "ok", "is_photo": True, "p_photo": 0.9, "noise_before": 0.0,
           "noise_after": 0.0, "blur_before": None, "blur_after": None}  # fmt: skip
    measures = dict(row_measures(row))
    assert measures["edge blur"] == "no edges to measure"
    assert measures["noise σ"] == "0.00 → 0.00"


def test_a_changed_setting_is_said_rounded() -> None:
    from scancap.pipeline.provenance import Provenance

    before = Provenance("0.3.0", {"threshold": 0.7234887850842162, "beam": 3}, {})
    after = Provenance("0.3.0", {"threshold": 0.3, "beam": 3}, {})
    assert after.changes_from(before) == ["threshold 0.7235 -> 0.3"]
