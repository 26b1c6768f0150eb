"""Generated broken inputs (seeded): each is a row with a reason, none crashes or hangs a batch."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scancap.batch import load_or_error
from scancap.cli import main
from scancap.io import ImageLoadError
from scancap.metadata import read_metadata
from scancap.pages import list_pages
from scancap_lab.fuzz_inputs import must_decode, must_fail, write_all

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "photo_Building.png"
TIME_LIMIT = 5.0  # seconds per input: the header checks must refuse before decoding


def test_every_broken_input_loads_or_gives_a_reason_quickly(tmp_path: Path) -> None:
    kinds = write_all(tmp_path / "fuzz", seed=0, per_kind=6)
    pages = list_pages([tmp_path / "fuzz"])
    assert {page.file.name for page in pages} == set(kinds)  # no file dropped
    for page in pages:
        start = time.perf_counter()
        loaded = load_or_error(page)
        assert time.perf_counter() - start < TIME_LIMIT, page
        if isinstance(loaded, ImageLoadError):
            assert loaded.reason, page
        else:
            assert loaded.dtype == np.uint8 and loaded.ndim == 3, page
            assert not must_fail(kinds[page.file.name]), f"{page} decoded"
        if must_decode(kinds[page.file.name]):  # only its metadata is damaged: keep the pixels
            assert isinstance(loaded, np.ndarray), f"{page}: {loaded}"
            read_metadata(page.file)  # what cannot be read is dropped, never raised
    print(f"{len(kinds)} generated inputs, {len(pages)} items")


@pytest.mark.slow
def test_scancap_run_gives_each_broken_input_an_error_row(tmp_path: Path) -> None:
    kinds = write_all(tmp_path / "in", seed=1, per_kind=1)
    shutil.copy(SAMPLE, tmp_path / "in" / SAMPLE.name)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "in"), "--out", str(out), "--quiet"]) == 1
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    files = manifest["path"].str.partition("#")[0]
    assert set(files) == set(kinds) | {SAMPLE.name}
    for row in manifest.itertuples():
        kind = kinds.get(row.path.partition("#")[0])
        assert row.status in {"ok", "error"}
        if row.status == "error":
            assert row.error
        if kind and must_fail(kind):
            assert row.status == "error", row
        if kind and must_decode(kind):
            assert row.status == "ok", row
    assert manifest.set_index("path").loc[SAMPLE.name, "status"] == "ok"
