"""The product end to end: `scancap run`, resume after a kill, the Python API and the service."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from skimage import data

from scancap import Pipeline
from scancap.caption.grounding import format_tags
from scancap.cli import main
from scancap.engines.ledger import LEDGER_FILE
from scancap.io import load_image
from scancap.ocr.engine import tesseract_problem
from scancap.pipeline.compose import MANIFEST_COLUMNS
from scancap.pipeline.provenance import file_sha256
from scancap.restore.workers import RestoreWorkers
from scancap.service import create_app
from scancap_lab.fuzz_inputs import jpeg_with_unreadable_exif
from scancap_lab.report_data import script_argument

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TEXT_PAGE = "text_DocBank_samples_DocBank_samples_202.tar_1709.03604.gz_bar_quenching_12_ori.jpg"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png"})
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    with Pipeline.load() as loaded:
        yield loaded


def _inputs_with_bad_files(folder: Path, samples: list[Path] = SAMPLE_FILES) -> dict[str, str]:
    """The samples in a nested folder plus three bad files; returns bad name -> expected reason."""
    nested = folder / "batch" / "nested"
    nested.mkdir(parents=True)
    for path in samples:
        shutil.copy(path, nested / path.name)
    good = SAMPLE_FILES[3].read_bytes()
    (folder / "batch" / "broken.jpg").write_bytes(good[: len(good) // 3])
    (folder / "batch" / "notes.png").write_text("meeting notes, not an image\n")
    huge = np.zeros((2100, 2100), np.uint8)
    iio.imwrite(folder / "batch" / "huge.png", huge)
    return {"broken.jpg": "truncated", "notes.png": "not", "huge.png": "pixels"}


def _photo_with_unreadable_exif(folder: Path) -> Path:
    """An old portrait scanned to a JPEG whose EXIF block is malformed: its pixels are fine."""
    path = folder / "photo_1890s_scan_unreadable_exif.jpg"
    path.write_bytes(jpeg_with_unreadable_exif(load_image(SAMPLES / "photo_Old_Tom_Morris.png")))
    return path


def _text_page_too_small_to_read(folder: Path) -> Path:
    """A text sample scanned at about 45 dpi: 500 px high."""
    page = load_image(SAMPLES / TEXT_PAGE)
    path = folder / "text_page_at_45_dpi.png"
    iio.imwrite(path, page[::2, ::2][:500])
    return path


def test_run_sorts_restores_captions_and_reports_every_input(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = _inputs_with_bad_files(tmp_path)
    old_scan = _photo_with_unreadable_exif(tmp_path / "batch")
    small_page = _text_page_too_small_to_read(tmp_path / "batch")
    inputs = sorted(p for p in (tmp_path / "batch").rglob("*") if p.is_file())
    hashes = {p: file_sha256(p) for p in inputs}
    out = tmp_path / "out"
    args = ["run", str(tmp_path / "batch"), "--out", str(out), "--max-pixels", "4000000"]
    code = main([*args, "--copy-non-photos", "--caption-txt", "--quiet"])

    assert code == 1  # some inputs failed, the rest went through
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert sorted(manifest["path"]) == sorted(p.relative_to(tmp_path / "batch").as_posix()
                                              for p in inputs)  # fmt: skip
    errors = manifest[manifest["status"] == "error"].set_index("path")["error"]
    assert sorted(errors.index) == sorted(bad)
    for name, reason in bad.items():
        assert reason in errors[name], errors[name]
    fine = manifest[manifest["status"] == "ok"]
    assert len(fine) == len(SAMPLE_FILES) + 2
    # Malformed EXIF costs nothing but the EXIF: restored, captioned, and said.
    scan = fine.set_index("path").loc[old_scan.name]
    assert scan.is_photo and scan.caption and (out / scan.output).is_file()
    assert scan.notes == "unreadable metadata dropped, pixels kept: EXIF (not a TIFF file)"
    terminal = capsys.readouterr().err
    assert f"note: {old_scan}: unreadable metadata dropped" in terminal
    if not tesseract_problem():  # a page read without any text says why
        page = fine.set_index("path").loc[small_page.name]
        assert page.subtype == "text" and page.text == "" and not page.text_file
        assert page.notes.startswith("no text read: the page is 500 px high, too small to read")
        assert f"note: {small_page}: no text read" in terminal
    photos = fine[fine["is_photo"].astype(bool)]
    assert set(photos["path"].map(lambda p: Path(p).name.startswith("photo_"))) == {True}
    assert len(photos) >= 5
    for row in photos.itertuples():
        assert row.caption and (out / row.output).is_file()
        assert (out / row.output).with_suffix(".txt").read_text().strip() == row.caption
        assert np.isfinite([row.noise_before, row.noise_after, row.blur_before]).all()
    for row in fine[~fine["is_photo"].astype(bool)].itertuples():
        assert row.output == f"sorted/{row.subtype}/{row.path}"
        assert (out / row.output).read_bytes() == (tmp_path / "batch" / row.path).read_bytes()
    captions = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert sorted(c["source"] for c in captions) == sorted(photos["path"])
    # The detector's objects: the old portrait's golfer, counted, boxed, in every output.
    portrait = photos.set_index("path").loc["nested/photo_Old_Tom_Morris.png"]
    assert portrait.object_counts == "1 person"
    (person,) = json.loads(portrait.objects)
    assert person["label"] == "person" and 0 <= min(person["box"]) < max(person["box"]) <= 1
    by_source = {c["source"]: c for c in captions}
    assert by_source["nested/photo_Old_Tom_Morris.png"]["objects"] == [person]
    assert all(isinstance(c["objects"], list) for c in captions)
    # The COCO detector calls the pink rose a person; the person detector does not agree.
    rose = photos.set_index("path").loc["nested/photo_4495885281_fe2a3b671d.jpg"]
    assert "person" not in rose.object_counts
    assert pd.read_csv(out / "manifest.csv").shape == manifest.shape
    (index,) = script_argument(out / "report" / "index.js", "scancapIndex")
    assert index["path"] == list(manifest["path"])  # every input has a card, errors included
    for thumbnail in (out / "report" / "thumbs").iterdir():
        assert thumbnail.suffix == ".webp" and thumbnail.stat().st_size < 60_000
    assert {p: file_sha256(p) for p in inputs} == hashes  # inputs never modified


def test_run_makes_each_page_of_a_pdf_or_tiff_an_item(tmp_path: Path) -> None:
    """A 3-page PDF (photo, text, photo) and a 3-page TIFF beside the samples: one row per page,
    pages classified independently, photo pages restored and captioned under their page name."""
    from test_pages import write_pdf, write_tiff

    samples = SAMPLE_FILES[::3]  # one of each kind: the pages are what this test is about
    bad = _inputs_with_bad_files(tmp_path, samples)  # the samples (in batch/nested), bad files
    batch = tmp_path / "batch"
    write_pdf(batch / "scan.pdf")
    write_tiff(batch / "stack.tif")
    (batch / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    out = tmp_path / "out"
    args = ["run", str(batch), "--out", str(out), "--copy-non-photos", "--max-pixels", "4000000"]
    args += ["--pdf-dpi", "100"]  # the test PDF is at 100 dpi: pages at their own size
    assert main([*args, "--quiet"]) == 1
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False).set_index("path")
    documents = [f"{name}#page={n}" for name in ("scan.pdf", "stack.tif") for n in (1, 2, 3)]
    assert set(documents) <= set(manifest.index) and manifest.index.is_unique
    assert len(manifest) == len(samples) + len(bad) + 6 + 1
    assert "broken symbolic link" in manifest.loc["gone.jpg", "error"]
    for name, reason in bad.items():
        assert reason in manifest.loc[name, "error"]
    for name, stem in (("scan.pdf", "scan"), ("stack.tif", "stack")):
        kinds = [manifest.loc[f"{name}#page={n}", "is_photo"] for n in (1, 2, 3)]
        assert [str(kind) for kind in kinds] == ["True", "False", "True"], kinds
        text_page = manifest.loc[f"{name}#page=2"]
        assert text_page["subtype"] == "text" and text_page["caption"] == ""
        assert (out / text_page["output"]).is_file()
        for n in (1, 3):
            row = manifest.loc[f"{name}#page={n}"]
            assert row["caption"] and row["output"].startswith(f"photos/{stem}.page-{n}.")
            assert (out / row["output"]).is_file()
    (index,) = script_argument(out / "report" / "index.js", "scancapIndex")
    assert set(documents) <= set(index["path"])


def test_a_rerun_with_other_settings_processes_again_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    for path in SAMPLE_FILES[:3]:
        shutil.copy(path, batch / path.name)
    out = tmp_path / "out"
    run = ["run", str(batch), "--out", str(out)]
    assert main(run) == 0
    capsys.readouterr()
    assert main(run) == 0  # same settings: nothing to do
    same = capsys.readouterr()
    assert "3 already done" in same.out and "note:" not in same.err
    assert main([*run, "--threshold", "0.99", "--restore-mode", "none"]) == 0
    changed = capsys.readouterr()
    assert "threshold" in changed.err and "restore_mode auto-fast -> none" in changed.err
    assert "3 redone with new settings" in changed.out
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["settings"]["threshold"] == 0.99
    assert set(recorded["models"]) == {"classifier", "captioner"}
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert (manifest["denoiser"] == "").all()  # restore_mode none: the new rows, not old ones
    assert "threshold 0.99" in (out / "report.html").read_text()
    assert "3 redone with new settings" in (out / "report.html").read_text()
    assert main([*run, "--threshold", "0.99", "--restore-mode", "none", "--force"]) == 0
    forced = capsys.readouterr().out
    assert "processed 3 in" in forced and "0 already done" in forced


def _ledger_rows(out: Path) -> dict[str, dict]:
    if not (out / LEDGER_FILE).exists():
        return {}
    with sqlite3.connect(out / LEDGER_FILE) as connection:
        try:
            found = connection.execute("SELECT relative_path, row FROM done").fetchall()
        except sqlite3.OperationalError:  # the table is not created yet
            return {}
    return {path: json.loads(row) for path, row in found}


def test_a_run_killed_midway_resumes_and_lists_each_input_once(tmp_path: Path) -> None:
    from test_pages import write_pdf

    files = SAMPLE_FILES[::3]  # one sample of each kind: painting, photos, schematic, sketch, text
    for copy in ("a", "b"):
        (tmp_path / "in" / copy).mkdir(parents=True)
        for path in files:
            shutil.copy(path, tmp_path / "in" / copy / path.name)
        write_pdf(tmp_path / "in" / copy / "scan.pdf")  # 3 pages, 3 items
    out = tmp_path / "out"
    command = [sys.executable, "-m", "scancap.cli", "run", str(tmp_path / "in"), "--out",
               str(out), "--batch-size", "2", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(_ledger_rows(out)) < 4 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = _ledger_rows(out)
    items = 2 * (len(files) + 3)
    assert 4 <= len(before) < items, "the run was not interrupted midway"
    assert not (out / "manifest.parquet").exists()

    assert main(["run", str(tmp_path / "in"), "--out", str(out), "--quiet"]) == 0
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False, dtype=str)
    assert manifest["path"].is_unique and len(manifest) == items
    assert {f"a/scan.pdf#page={n}" for n in (1, 2, 3)} <= set(manifest["path"])
    after = _ledger_rows(out)
    assert all(after[path] == row for path, row in before.items())


def test_the_python_api_analyses_files_and_arrays(pipeline: Pipeline, tmp_path: Path) -> None:
    cat = pipeline.analyze(data.chelsea())
    assert cat.status == "ok" and cat.is_photo and cat.restored is not None
    assert cat.caption and cat.caption_score < 0
    page = pipeline.analyze(SAMPLES / "text_596.jpg")
    assert page.status == "ok" and not page.is_photo and page.subtype == "text"
    assert page.caption == "" and page.restored is None
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    broken = pipeline.analyze(tmp_path / "bad.png")
    assert broken.status == "error" and broken.error
    missing = pipeline.analyze(tmp_path / "gone.png")  # a row that says so, not an exception
    assert missing.status == "error" and "file not found" in missing.error


def test_a_second_pipeline_in_the_process_shares_the_backbones_and_answers_the_same(
    pipeline: Pipeline,
) -> None:
    """Loading the backbones and tracing them takes seconds: a notebook or a script that loads
    a pipeline again reuses them, and its answers do not change."""
    with Pipeline.load() as second:
        assert second.captioner.backbone is pipeline.captioner.backbone
        assert second.classifier.frozen is pipeline.classifier.frozen
        first, again = pipeline.analyze(data.chelsea()), second.analyze(data.chelsea())
    assert again.p_photo == pytest.approx(first.p_photo, abs=1e-6)
    assert (again.caption, again.tags) == (first.caption, first.tags)


def test_photos_are_captioned_from_their_restored_pixels(pipeline: Pipeline) -> None:
    """The captioner describes what restoration returned: the photo itself when restoration
    leaves it as it is, its denoised pixels when it does not. Grounding's person detector
    reads the classifier's Lite0 view of the photo as it came in, as it was trained, and the
    detectors' thresholds follow the grain of the photo as it came in."""
    clean = np.asarray(data.chelsea())  # clean and sharp: restoration leaves it as it is
    noise = np.random.default_rng(0).normal(0, 15, clean.shape)
    noisy = np.clip(clean + noise, 0, 255).astype(np.uint8)
    untouched, denoised = pipeline.analyze(clean), pipeline.analyze(noisy)
    assert np.array_equal(untouched.restored, clean)
    assert denoised.is_photo and not np.array_equal(denoised.restored, noisy)
    captioner = pipeline.captioner
    for result, original in ((untouched, clean), (denoised, noisy)):
        grids = captioner.grids([result.restored])
        found, best = captioner.detect([result.restored])  # objects on what is captioned
        direct = captioner.describe(
            grids,
            beam=pipeline.config.beam,
            lite0=captioner.lite0_grids([original]),
            grain=captioner.grain_of([original]),
            objects=best,
            detections=found,
        )
        assert result.caption == direct[0].text
        assert result.tags == format_tags(direct[0].tags)


def test_restoration_over_the_time_limit_is_an_error_not_a_hang() -> None:
    workers = RestoreWorkers("auto", 1.0, workers=1, time_limit=0.01)
    big = np.repeat(np.repeat(data.astronaut(), 2, axis=0), 2, axis=1)
    start = time.perf_counter()
    results = workers.collect(workers.submit([big]))
    assert "limit" in results[0] and time.perf_counter() - start < 5
    workers.close()


def test_a_timed_out_restoration_keeps_the_photo_classified_and_captioned(
    pipeline: Pipeline,
) -> None:
    from scancap.config import RunConfig

    hurried = Pipeline(
        pipeline.classifier, pipeline.captioner, RunConfig(restore_mode="auto", time_limit=1e-4)
    )
    photo = np.repeat(np.repeat(data.astronaut(), 2, axis=0), 2, axis=1)
    try:
        result = hurried.analyze(photo, name="astronaut.png")
    finally:
        hurried.close()
    assert result.status == "ok" and result.is_photo, result.error
    assert "limit" in result.restore_notes and "unrestored" in result.restore_notes
    assert np.array_equal(result.restored, photo) and result.caption


# --- the service ---------------------------------------------------------------------------------


def test_service_answers_every_page_of_a_pdf(pipeline: Pipeline, tmp_path: Path) -> None:
    from test_pages import write_pdf

    pdf = write_pdf(tmp_path / "scan.pdf")
    with TestClient(create_app(pipeline)) as client:
        answer = client.post(
            "/v1/analyze", files={"file": ("scan.pdf", pdf.read_bytes(), "application/pdf")}
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [page["path"] for page in body["pages"]] == [f"scan.pdf#page={n}" for n in (1, 2, 3)]
    assert [page["is_photo"] for page in body["pages"]] == [True, False, True]
    assert body["path"] == "scan.pdf#page=1" and body["caption"]


def test_service_answers_photos_and_refuses_bad_input_with_4xx(pipeline: Pipeline) -> None:
    with TestClient(create_app(pipeline, max_upload_mb=1.0)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/version").json()["scancap"]
        photo = SAMPLES / "photo_200557981_f800fa1af9.jpg"
        answer = client.post(
            "/v1/analyze",
            files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
            params={"include_image": True},
        )
        assert answer.status_code == 200
        body = answer.json()
        assert body["is_photo"] and body["caption"] and body["path"] == photo.name
        assert set(MANIFEST_COLUMNS) <= set(body) and len(body["restored_png_base64"]) > 1000
        assert isinstance(body["objects"], list)  # the detections as a list, not JSON text
        assert all(0 <= v <= 1 for item in body["objects"] for v in item["box"])
        assert body["error"] is None  # a field that does not apply is null, never ""
        text_page = SAMPLES / "text_596.jpg"
        page = client.post("/v1/analyze", files={"file": (text_page.name, text_page.read_bytes())})
        assert page.json()["caption"] is None and page.json()["denoiser"] is None
        assert "" not in page.json().values()
        if not tesseract_problem():  # the service returns what OCR read on the receipt
            assert "SEAFOOD RESTAURANT" in page.json()["text"]
            assert page.json()["title"] == page.json()["text"].splitlines()[0]
        pixels = load_image(SAMPLES / "photo_Old_Tom_Morris.png")
        scan = client.post(
            "/v1/analyze", files={"file": ("1890.jpg", jpeg_with_unreadable_exif(pixels))}
        )
        assert scan.status_code == 200 and scan.json()["is_photo"]  # the EXIF goes, not the photo
        assert "EXIF (not a TIFF file)" in scan.json()["notes"]
        text = client.post("/v1/analyze", files={"file": ("a.jpg", b"not an image")})
        assert text.status_code == 422 and "a.jpg" in text.json()["detail"]
        assert client.post("/v1/analyze", files={"file": ("e.png", b"")}).status_code == 400
        large = client.post("/v1/analyze", files={"file": ("l.png", b"0" * 2_000_000)})
        assert large.status_code == 413
        assert "/v1/analyze" in client.get("/openapi.json").json()["paths"]
        missing = client.post("/v1/analyze", data={"nothing": "here"})
        assert missing.status_code == 422 and missing.json()["detail"].startswith("bad request")
        assert "file" in missing.json()["detail"]


def test_service_requires_its_key_and_sheds_load_past_its_queue(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, photo = "k" * 24, (SAMPLES / "photo_200557981_f800fa1af9.jpg").read_bytes()
    files, good = {"file": ("p.jpg", photo)}, {"Authorization": f"Bearer {'k' * 24}"}
    release, original = threading.Event(), pipeline.start_batch

    def held(items: list) -> object:  # a batch that stays in the service until released
        release.wait(60)
        return original(items)

    with TestClient(create_app(pipeline, api_key=key, max_queue=1)) as client:
        refused = client.post("/v1/analyze", files=files)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        wrong = client.post(
            "/v1/analyze", files=files, headers={"Authorization": "Bearer " + "x" * 24}
        )
        assert wrong.status_code == 401 and "API key" in wrong.json()["detail"]
        assert client.post("/v1/corrections", json={"corrections": []}).status_code == 401
        assert client.post("/v1/analyze", files=files, headers=good).json()["is_photo"]
        assert client.get("/healthz").status_code == 200  # operations need no key
        batches = client.get("/healthz").json()["batches"]
        monkeypatch.setattr(pipeline, "start_batch", held)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/v1/analyze", files=files, headers=good)
            while client.get("/healthz").json()["batches"] == batches:
                time.sleep(0.01)  # the first analysis is inside, held
            busy = client.post("/v1/analyze", files=files, headers=good)
            assert busy.status_code == 503 and int(busy.headers["Retry-After"]) >= 1
            assert "busy" in busy.json()["detail"]
            release.set()
            assert first.result().status_code == 200
        assert client.post("/v1/analyze", files=files, headers=good).status_code == 200


def test_service_docs_work_offline(pipeline: Pipeline) -> None:
    """/docs must not load Swagger UI from a CDN: its assets come from the installed package."""
    with TestClient(create_app(pipeline)) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "https://" not in page.text and "cdn" not in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert f"/docs-assets/{asset}" in page.text
            assert client.get(f"/docs-assets/{asset}").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_service_batches_concurrent_requests_under_a_real_uvicorn_process(
    pipeline: Pipeline,
) -> None:
    """Concurrent clients share batches, and each gets the answer it would get alone."""
    port = _free_port()
    command = [sys.executable, "-m", "scancap.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    photos = [p for p in SAMPLE_FILES if p.name.startswith("photo_")][::2] * 2  # 3 files, twice

    def post(path: Path) -> dict:
        answer = httpx.post(f"{base}/v1/analyze", files={"file": (path.name, path.read_bytes())},
                            timeout=120)  # fmt: skip
        assert answer.status_code == 200, answer.text
        return answer.json()

    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").json()["status"] == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        with ThreadPoolExecutor(len(photos)) as clients:
            answers = list(clients.map(post, photos))
        health = httpx.get(f"{base}/healthz").json()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert health["pages"] == len(photos) and health["batches"] < len(photos)
    for path, answer in zip(photos, answers, strict=True):
        alone = pipeline.analyze(path)
        assert answer["path"] == path.name and answer["is_photo"] == alone.is_photo
        assert answer["caption"] == (alone.caption or None)  # the service's JSON says null
        assert answer["denoiser"] == (alone.denoiser or None)
        assert abs(answer["p_photo"] - alone.p_photo) < 1e-4


def test_no_objects_runs_without_the_detector_and_its_captions_ground_people_only(
    tmp_path: Path,
) -> None:
    """`--no-objects`: no detections in any output, captions still made and grounded."""
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("photo_Old_Tom_Morris.png", "photo_Building.png"):
        shutil.copy(SAMPLES / name, batch / name)
    out = tmp_path / "out"
    assert main(["run", str(batch), "--out", str(out), "--no-objects", "--quiet"]) == 0
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest["caption"].str.len().gt(0).all()
    assert manifest["objects"].eq("").all() and manifest["object_counts"].eq("").all()
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["objects"] is False
