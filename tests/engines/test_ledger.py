"""The resume ledger survives a reopen and keys rows by path and content."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scancap.engines.ledger import Ledger
from scancap.pipeline.provenance import file_sha256


def test_rows_survive_reopening_and_content_changes_invalidate(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"first version")
    digest = file_sha256(image)
    with Ledger(tmp_path / "out") as ledger:
        assert ledger.finished("a.png", digest) is None
        ledger.record(
            "a.png", digest, {"path": "a.png", "p_photo": np.float32(0.25)}, [("after", "t.webp")]
        )
    with Ledger(tmp_path / "out") as ledger:
        assert ledger.finished("a.png", digest) == {"path": "a.png", "p_photo": 0.25}
        assert (
            ledger.thumbnails("a.png") == [("after", "t.webp")] and ledger.thumbnails("b.png") == []
        )
        image.write_bytes(b"second version")
        assert ledger.finished("a.png", file_sha256(image)) is None
        ledger.forget()
        assert list(ledger.rows()) == []


def test_sha256_matches_hashlib_on_a_sample(tmp_path: Path) -> None:
    import hashlib

    sample = Path(__file__).resolve().parents[2] / "samples" / "sketch_5440.png"
    assert file_sha256(sample, chunk=1024) == hashlib.sha256(sample.read_bytes()).hexdigest()
