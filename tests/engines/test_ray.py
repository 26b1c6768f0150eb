"""`scancap run --engine ray` on a real two-node Ray cluster started on 127.0.0.1: the same
manifest as the local engine, a worker node killed midway, and a rerun that completes with each
input exactly once."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from filelock import FileLock

from scancap.cli import main
from scancap.engines.ray import ray_available, read_parts, write_part
from scancap.engines.storage import OutputTree
from scancap.pipeline.compose import MANIFEST_COLUMNS
from scancap_lab.report_data import script_argument

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
RAY = Path(sys.executable).with_name("ray")
TIMINGS = [c for c in MANIFEST_COLUMNS if c.startswith("seconds_")]
needs_ray = pytest.mark.skipif(not ray_available(), reason="the ray extra is not installed")


def test_a_batch_part_keeps_every_field_of_its_rows(tmp_path: Path) -> None:
    rows = [{c: None for c in MANIFEST_COLUMNS} | {"path": "a.jpg", "sha256": "1", "status": "ok",
          "is_photo": True, "p_photo": 0.5, "width": 640, "caption": "a dog", "seconds_decode": 0.1,
          "thumbnails": '[["after", "report/thumbs/x.after.webp"]]'},
         {c: None for c in MANIFEST_COLUMNS} | {"path": "b.jpg", "sha256": "2", "status": "error",
          "error": "not a valid JPEG file", "thumbnails": "[]"}]  # fmt: skip
    write_part(tmp_path / "parts", rows)
    done = read_parts(OutputTree(tmp_path), "parts")
    row, thumbs = done[("a.jpg", "1")]
    assert row["width"] == 640 and isinstance(row["width"], int) and row["caption"] == "a dog"
    assert thumbs == [("after", "report/thumbs/x.after.webp")]
    error_row, no_thumbs = done[("b.jpg", "2")]
    assert error_row["is_photo"] is None and error_row["error"] and no_thumbs == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_node(arguments: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """One Ray node in the foreground of its own process group, ready when it says so."""
    command = [str(RAY), "start", *arguments, "--num-cpus", "1", "--disable-usage-stats",
               "--object-store-memory", "300000000", "--block"]  # fmt: skip
    with log.open("wb") as sink:
        node = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text(errors="replace"):
        assert node.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    return node


def _stop_node(node: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """The node's processes, by their process ids: `ray start` and every descendant (Ray's
    workers start sessions of their own, so a process group is not enough)."""
    try:
        family = [node.pid, *(p.pid for p in psutil.Process(node.pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        family = [node.pid]
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    node.wait(timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A head node and a worker node, 1 CPU each, with a token only this test knows."""
    folder = tmp_path_factory.mktemp("ray-cluster")
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                        # a lost node is noticed in about 2 s instead of about 30
                        "RAY_health_check_period_ms": "500", "RAY_health_check_timeout_ms": "500",
                        "RAY_health_check_failure_threshold": "3"}  # fmt: skip
    port = _free_port()
    head = _start_node(["--head", "--port", str(port), "--include-dashboard=false"],
                       folder / "head.log", env)  # fmt: skip
    worker = None
    try:
        worker = _start_node(["--address", f"127.0.0.1:{port}"], folder / "worker.log", env)
        yield {"address": f"127.0.0.1:{port}", "env": env, "worker": worker}
    finally:
        for node in (worker, head):
            if node is not None:
                _stop_node(node)


def _batch(tree: Path) -> None:
    """In `tree/box` (one folder down: names keep their folder), one sample of each kind
    (painting, photos, schematic, sketch, text), a 3-page PDF (photo, text, photo), a corrupt
    file and a text file named like an image: 11 items, 6 batches of 2."""
    from test_pages import write_pdf

    batch = tree / "box"
    batch.mkdir(parents=True)
    images = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    for path in images[::3]:
        shutil.copy(path, batch / path.name)
    write_pdf(batch / "scan.pdf")
    (batch / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (batch / "notes.png").write_text("meeting notes, not an image\n")


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Path]:
    """The batch (`_batch`) and its run by the local engine, which both Ray runs must equal:
    made once per session by whichever test worker asks first (the others wait for it)."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # each worker's temporary folder sits in the session's
        shared = shared.parent
    folder = shared / "ray-reference"
    with FileLock(f"{folder}.lock"):
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            _batch(folder / "tree")
            local = ["run", str(folder / "tree"), "--out", str(folder / "local"), "--pdf-dpi"]
            assert main([*local, "100", "--quiet"]) == 1  # the two bad files
            (folder / "done").touch()
    return {"tree": folder / "tree", "local": folder / "local"}


def _parts(out: Path) -> int:
    return len(list((out / "parts").glob("*/*.parquet")))


@needs_ray
@pytest.mark.slow
def test_a_two_node_cluster_gives_the_local_manifest_and_survives_a_lost_node(
    cluster: dict, reference: dict[str, Path], tmp_path: Path
) -> None:
    out, tree = tmp_path / "ray", reference["tree"]
    command = [sys.executable, "-m", "scancap.cli", "run", str(tree), "--out", str(out),
               "--engine", "ray", "--address", cluster["address"], "--batch-size", "2",
               "--pdf-dpi", "100", "--quiet"]  # fmt: skip
    first = subprocess.Popen(command, env=cluster["env"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while _parts(out) < 2:  # some batches recorded, most not: kill the worker node now
        assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
        time.sleep(0.2)
    _stop_node(cluster["worker"])
    first_output, _ = first.communicate(timeout=600)
    assert first.returncode in (0, 1), first_output  # finished on the head, or stopped cleanly
    assert "Traceback" not in first_output and "raylet" not in first_output  # Ray's in ray.log

    rerun = subprocess.run(command, env=cluster["env"], capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert rerun.returncode == 1, rerun.stdout + rerun.stderr  # the two bad files
    assert "Traceback" not in rerun.stderr
    assert "raylet" not in rerun.stdout + rerun.stderr

    local = reference["local"]
    expected = pd.read_parquet(local / "manifest.parquet").drop(columns=TIMINGS)
    manifest = pd.read_parquet(out / "manifest.parquet").drop(columns=TIMINGS)
    assert manifest["path"].is_unique and len(manifest) == len(expected)
    assert {f"box/scan.pdf#page={n}" for n in (1, 2, 3)} <= set(manifest["path"])
    pd.testing.assert_frame_equal(manifest, expected, check_exact=False, rtol=1e-3)
    (index,) = script_argument(out / "report" / "index.js", "scancapIndex")
    assert index["path"] == list(expected["path"])
    for row in manifest[manifest["is_photo"].eq(True)].itertuples():
        assert np.array_equal(_pixels(out / row.output), _pixels(local / row.output))


def _pixels(path: Path) -> np.ndarray:
    from scancap.io import load_image

    return load_image(path)


@needs_ray
def test_an_address_nobody_listens_at_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{_free_port()}"
    argv = ["run", str(SAMPLES), "--out", str(tmp_path / "out"), "--engine", "ray"]
    assert main([*argv, "--address", address]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("scancap run: no Ray cluster answers at") and "\n" not in error
    assert main(["run", str(SAMPLES), "--out", str(tmp_path / "out"), "--address", address]) == 2
    assert "--address is for --engine ray" in capsys.readouterr().err


@pytest.fixture
def object_store(tmp_path: Path) -> Iterator[dict]:
    """An S3 server on 127.0.0.1 (moto), a bucket in it, and the environment that reaches it."""
    port = _free_port()
    env = os.environ | {"AWS_ACCESS_KEY_ID": "scancap-test", "AWS_SECRET_ACCESS_KEY": "secret",
                        "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    server = subprocess.Popen([str(RAY.with_name("moto_server")), "-H", "127.0.0.1", "-p",
                               str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert server.poll() is None and time.monotonic() < deadline, "moto did not start"
            time.sleep(0.2)
        options = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        yield {"env": env, "uri": lambda path: f"s3://scans/{path}?{options}"}
    finally:
        server.kill()
        server.wait(timeout=30)


@needs_ray
@pytest.mark.slow
def test_inputs_and_outputs_on_an_object_store_give_the_local_results(
    object_store: dict,
    reference: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pyarrow.fs as pafs

    tree, local = reference["tree"], reference["local"]
    env, uri = object_store["env"], object_store["uri"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(name, env[name])  # uploads without them are stored garbled by moto
    s3, _ = pafs.FileSystem.from_uri(uri("in") + "&allow_bucket_creation=true")
    s3.create_dir("scans")
    pafs.copy_files(str(tree), "scans/in", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=s3)  # fmt: skip

    # The folder, and a file in it again: each input once. A local Ray of one CPU (one actor
    # loading the models): the two-node test runs several.
    command = [sys.executable, "-m", "scancap.cli", "run", uri("in"), uri("in/box/scan.pdf"),
               "--out", uri("out"), "--engine", "ray", "--workers", "1", "--pdf-dpi", "100",
               "--quiet"]  # fmt: skip
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 1, first.stdout + first.stderr  # the two bad files
    assert "error: s3://scans/in/box/broken.jpg:" in first.stderr
    assert "Traceback" not in first.stderr

    copy = tmp_path / "from-s3"
    pafs.copy_files("scans/out", str(copy), source_filesystem=s3,
                    destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
    expected = pd.read_parquet(local / "manifest.parquet").drop(columns=[*TIMINGS, "file"])
    manifest = pd.read_parquet(copy / "manifest.parquet").drop(columns=TIMINGS)
    located = manifest.pop("file")  # where each page is: its URI, not the actor's copy
    assert located[manifest["status"] == "ok"].str.startswith("s3://scans/in/").all()
    pd.testing.assert_frame_equal(manifest, expected, check_exact=False, rtol=1e-3)
    for row in manifest[manifest["is_photo"].eq(True)].itertuples():
        assert np.array_equal(_pixels(copy / row.output), _pixels(local / row.output))
    _, details = script_argument(copy / "report" / "details" / "0000.js", "scancapDetails")
    thumbs = {src for card in details for _, src in card["thumbs"]}
    assert thumbs and all((copy / src).is_file() for src in thumbs)
    assert "s3://scans/in/box/scan.pdf#page=2" in {card["source"] for card in details}
    texts = [name for name in manifest["text_file"] if name]
    assert texts and all((copy / name).is_file() for name in texts)  # OCR's outputs too

    rerun = subprocess.run(command[:-1], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 1 and "Traceback" not in rerun.stderr
    assert f"{len(expected)} already done" in rerun.stdout, rerun.stdout
    assert "report: s3://scans/out/report.html" in rerun.stdout


def test_uris_need_the_ray_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "s3://bucket/scans", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "error: s3://bucket/scans: inputs and outputs given as URIs need --engine ray"
