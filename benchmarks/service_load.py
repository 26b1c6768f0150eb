"""Load benchmark of the HTTP service: writes reports/service.md from the measurements it makes.

    .venv/bin/python benchmarks/service_load.py [--images 256] [--clients 1,4,16,64,256]
        [--port PORT] [--data DIR] [--out-report reports/service.md]

The same seeded doctype photos go first through `scancap run` (the baseline), then through one
`scancap serve` on 127.0.0.1, started once and stopped at the end whatever happens, at each
concurrency level: c client threads share the photos round robin, one photo per request, each
waiting for its answer before sending the next; a request the service sheds (503) is sent
again after its Retry-After, as a well-behaved client would. A few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import PeakRss, markdown, timed_run, verdict  # noqa: E402

from scancap import __version__  # noqa: E402
from scancap.io import atomic_write_text  # noqa: E402
from scancap.paths import data_dir  # noqa: E402
from scancap_lab.paths import reports_dir  # noqa: E402
from scancap_lab.pipeline.bench import SEED, make_photo_set  # noqa: E402

SHED = 503  # the service's answer past its queue bound
HOST = "127.0.0.1"  # never another interface: the benchmark must not expose the service
TARGET_CLIENTS, TARGET_SHARE, TARGET_P95_S = 16, 0.70, 3.0
STARTUP_TIMEOUT_S, REQUEST_TIMEOUT_S, STOP_TIMEOUT_S = 300.0, 120.0, 30.0
SAMPLE_INTERVAL_S = 0.1

Upload = tuple[str, bytes]  # file name, file contents


def photo_uploads(folder: Path, count: int, data: Path) -> list[Upload]:
    """The pipeline benchmark's photo set (seeded, 224-1024 px JPEGs), read into memory once,
    before any timing: the clients measure the service, not the disk."""
    paths = make_photo_set(folder, count, data)
    return [(path.name, path.read_bytes()) for path in paths]


def describe_photos(uploads: list[Upload]) -> dict[str, Any]:
    """Sizes for the report: the service's time per photo follows its pixels."""
    sides = [max(Image.open(io.BytesIO(data)).size) for _, data in uploads]
    return {
        "count": len(uploads),
        "seed": SEED,
        "long_side": f"{min(sides)}-{max(sides)}",
        "mean_kb": round(sum(len(data) for _, data in uploads) / len(uploads) / 1024, 1),
    }


def measure_baseline(uploads: list[Upload], folder: Path) -> dict[str, Any]:
    """`scancap run` on the same files; its printed processing time leaves model loading out."""
    inputs, out = folder / "inputs", folder / "run"
    inputs.mkdir()
    for name, data in uploads:
        (inputs / name).write_bytes(data)
    run = timed_run(inputs, out)
    manifest = pd.read_parquet(out / "manifest.parquet")
    photos = int(manifest["is_photo"].fillna(False).astype(bool).sum())
    return run | {
        "photos": photos,
        "photos_per_second": round(photos / run["run_seconds"], 2),
        "images_per_second": round(run["processed"] / run["run_seconds"], 2),
    }


def free_port() -> int:
    """A port nobody listens on now, so a default run does not collide with a real service."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def serving(port: int, log: Path) -> Iterator[subprocess.Popen]:
    """`scancap serve` in its own session, so Ctrl-C reaches only this script, which stops it."""
    command = [sys.executable, "-m", "scancap.cli", "serve", "--host", HOST, "--port", str(port)]
    with log.open("wb") as sink:
        server = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield server
    finally:
        stop(server)


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (workers it may fork too), SIGKILL what remains."""
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        server.wait(timeout=STOP_TIMEOUT_S)
    with suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def wait_ready(server: subprocess.Popen, base_url: str, log: Path) -> float:
    """Seconds until /healthz says ok (models loaded and warmed); fails fast if the server dies."""
    start = time.perf_counter()
    while time.perf_counter() - start < STARTUP_TIMEOUT_S:
        if server.poll() is not None:
            raise RuntimeError(f"scancap serve exited ({server.returncode}):\n{tail(log)}")
        with suppress(httpx.HTTPError, ValueError):
            if httpx.get(f"{base_url}/healthz", timeout=5).json().get("status") == "ok":
                return time.perf_counter() - start
        time.sleep(0.5)
    raise RuntimeError(f"scancap serve not ready after {STARTUP_TIMEOUT_S:g} s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def analyze(client: httpx.Client, url: str, upload: Upload) -> dict[str, Any]:
    """One request; a refusal, a timeout or a broken answer is a failure row, not a crash."""
    start = time.perf_counter()
    answer: dict[str, Any] = {}
    retry_after = 0.0
    try:
        response = client.post(url, files={"file": upload})
        code = response.status_code
        if code == 200:
            answer = response.json()
        retry_after = float(response.headers.get("Retry-After", 0))
    except (httpx.HTTPError, ValueError):
        code = 0
    return {
        "seconds": time.perf_counter() - start,
        "http": code,
        "ok": code == 200 and answer.get("status") == "ok",
        "photo": bool(answer.get("is_photo")),
        "retry_after": retry_after,
    }


def send_share(client: httpx.Client, url: str, share: list[Upload], rows: list[dict]) -> None:
    """One client: its photos one after another, as a user waiting for each answer would; a
    photo the service sheds is sent again after the Retry-After it was given."""
    for upload in share:
        while True:
            row = analyze(client, url, upload)
            rows.append(row)
            if row["http"] != SHED:
                break
            time.sleep(row["retry_after"])


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def server_high_water_gb(pid: int) -> float:
    """The main server process's peak RSS since it started (model loading included)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024**2, 3)
    raise RuntimeError(f"no VmHWM for process {pid}")


def run_level(url: str, uploads: list[Upload], clients: int, pid: int) -> dict[str, Any]:
    """All photos through the service from `clients` threads, each with its own connection.

    Daemon threads: on Ctrl-C the main thread leaves at once and stops the server, and the
    clients' remaining requests fail instead of keeping the script alive.
    """
    rows: list[dict] = []
    sessions = [httpx.Client(timeout=REQUEST_TIMEOUT_S) for _ in range(clients)]
    threads = [
        threading.Thread(
            target=send_share, args=(session, url, uploads[i::clients], rows), daemon=True
        )
        for i, session in enumerate(sessions)
    ]
    server = psutil.Process(pid)
    with PeakRss(lambda: {pid: tree_rss(server)}, SAMPLE_INTERVAL_S) as rss:
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    for session in sessions:
        session.close()
    return summarise(clients, pd.DataFrame(rows), wall, rss.peak)


def summarise(clients: int, rows: pd.DataFrame, wall: float, peak_rss: int) -> dict[str, Any]:
    """A level's figures; latency is that of the requests the service accepted (a shed one
    is answered at once and counted apart)."""
    shed = rows["http"] == SHED
    accepted = rows[~shed]
    p50, p95, p99 = (float(p) for p in np.percentile(accepted["seconds"], [50, 95, 99]))
    rows = accepted
    return {
        "clients": clients,
        "requests": len(rows),
        "shed": int(shed.sum()),
        "failures": int((~rows["ok"]).sum()),
        "http_codes": {str(k): int(v) for k, v in rows["http"].value_counts().items()},
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(rows) / wall, 2),
        "photos_per_second": round(int(rows["photo"].sum()) / wall, 2),
        "p50_seconds": round(p50, 3),
        "p95_seconds": round(p95, 3),
        "p99_seconds": round(p99, 3),
        "peak_rss_gb": round(peak_rss / 1024**3, 3),
    }


def measure_service(uploads: list[Upload], levels: list[int], port: int, folder: Path) -> dict:
    """One server for every level, so each level finds the models loaded and warm."""
    base_url, log = f"http://{HOST}:{port}", folder / "serve.log"
    with serving(port, log) as server:
        ready = wait_ready(server, base_url, log)
        settings = httpx.get(f"{base_url}/version", timeout=5).json()
        url = f"{base_url}/v1/analyze"
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            first = analyze(client, url, uploads[0])  # untimed: fail before minutes of load
        if not first["ok"]:
            raise RuntimeError(f"the service did not analyze a photo ({first}):\n{tail(log)}")
        results = []
        for clients in levels:
            results.append(run_level(url, uploads, clients, server.pid))
            print(level_line(results[-1]), flush=True)
        high_water = server_high_water_gb(server.pid)
    return {"ready_seconds": round(ready, 1), "settings": settings,
            "high_water_rss_gb": high_water, "levels": results}  # fmt: skip


def level_line(level: dict[str, Any]) -> str:
    return (
        f"{level['clients']} clients: {level['requests']} requests in {level['wall_seconds']} s, "
        f"{level['requests_per_second']} req/s, p50/p95/p99 {level['p50_seconds']}/"
        f"{level['p95_seconds']}/{level['p99_seconds']} s, {level['shed']} shed, "
        f"{level['failures']} failures, "
        f"peak RSS {level['peak_rss_gb']} GB"
    )


def target_line(levels: list[dict[str, Any]], baseline: dict[str, Any]) -> str:
    """The issue's targets, judged at 16 clients against `scancap run` on the same photos."""
    level = next((lv for lv in levels if lv["clients"] == TARGET_CLIENTS), None)
    if level is None:
        return f"{TARGET_CLIENTS} clients: not measured (add {TARGET_CLIENTS} to --clients)."
    share = level["photos_per_second"] / baseline["photos_per_second"]
    return (
        f"{TARGET_CLIENTS} clients: {level['requests_per_second']} req/s, "
        f"{level['photos_per_second']} photos/s = {share:.0%} of `scancap run`'s "
        f"{baseline['photos_per_second']} photos/s (target ≥ {TARGET_SHARE:.0%}): "
        f"{verdict(share >= TARGET_SHARE)}; p95 {level['p95_seconds']} s "
        f"(target ≤ {TARGET_P95_S:g} s): {verdict(level['p95_seconds'] <= TARGET_P95_S)}"
    )


def shedding_lines(levels: list[dict[str, Any]], max_queue: object) -> str:
    """Where the queue bound sits: at each level past it, how much was shed and how long an
    accepted request waited."""
    past = [level for level in levels if level["clients"] > int(max_queue or 0)]
    if not past:
        return f"No level had more clients than the bound ({max_queue}): nothing to shed."
    return "\n".join(
        f"- {level['clients']} clients: {level['shed']} of "
        f"{level['shed'] + level['requests']} attempts shed "
        f"({level['shed'] / (level['shed'] + level['requests']):.0%}), each answered at once; "
        f"the accepted requests' p95 {level['p95_seconds']} s and p99 {level['p99_seconds']} s, "
        f"{level['photos_per_second']} photos/s."
        for level in past
    )


def levels_table(levels: list[dict[str, Any]]) -> str:
    columns = {
        "clients": "clients",
        "requests": "requests",
        "shed": "shed (503)",
        "failures": "failures",
        "requests_per_second": "req/s",
        "photos_per_second": "photos/s",
        "p50_seconds": "p50 s",
        "p95_seconds": "p95 s",
        "p99_seconds": "p99 s",
        "peak_rss_gb": "peak RSS GB",
    }
    return markdown(pd.DataFrame(levels)[list(columns)].rename(columns=columns))


def report_text(results: dict[str, Any]) -> str:
    photos, service, baseline = results["photos"], results["service"], results["baseline"]
    settings = service["settings"]
    return f"""# Service load benchmark

Generated by `benchmarks/service_load.py` (raw numbers: `{results["raw"]}`, beside this) on
{results["date"]}: {results["cpus"]} cores ({results["machine"]}), scancap {results["scancap"]},
1-minute load average {results["load_average"]} at the start (nothing else should run).

**Photos**: the pipeline benchmark's photo set (`make_photo_set`, seed {SEED}: CBSD68, Kodak24
and Flickr8k dev photos resized to a long side drawn in 224-1024 px, JPEG 90), {photos["count"]}
photos, {photos["long_side"]} px on the long side, {photos["mean_kb"]} KB on average.

**Service**: one `scancap serve --host {HOST}` with default settings (restore
{settings.get("restore_mode")}, beam {settings.get("beam")}, micro-batches of up to
{settings.get("max_batch")} pages gathered for up to {settings.get("max_wait_ms")} ms, at most
{settings.get("max_queue")} analyses in the service at once), ready
{service["ready_seconds"]} s after start (models loaded and warmed), then one untimed request.
At each level, c client threads, each with its own keep-alive connection, share the
{photos["count"]} photos round robin (one photo per request) and wait for each answer before
sending the next. Past its queue bound the service sheds a request (503 with Retry-After); the
client sends it again after that many seconds. Throughput is answered requests over the level's
wall time; latency runs from sending an accepted request to reading its answer (a shed request
is answered at once and counted in its own column); a failure is anything but a shed request
or HTTP 200 with status ok. Peak RSS is the server's process tree, sampled every
{SAMPLE_INTERVAL_S:g} s during the level.

{levels_table(service["levels"])}

The server's own peak RSS over the whole benchmark (kernel high-water mark, model loading
included): {service["high_water_rss_gb"]} GB.

**Baseline**: `scancap run` on the same files with default settings: {baseline["photos"]} photos
of {baseline["processed"]} images in {baseline["run_seconds"]} s of processing as the command
prints it = **{baseline["photos_per_second"]} photos/s** ({baseline["images_per_second"]}
images/s); {baseline["wall_seconds"]} s with start-up, peak RSS {baseline["peak_rss_gb"]} GB.
The comparison is not like for like in two ways, both in the service's favour: `scancap run`
writes every restored photo, its thumbnails and its ledger row to disk, where the service only
answers JSON, and its printed time includes building the models' graphs on the first batch,
which the service does before it opens its port.

## Where the queue bound sits

At most {settings.get("max_queue")} analyses are in the service at once (`--max-queue`); the
clients beyond it are told to come back (503, `Retry-After` from the backlog and the recent
time per page) instead of waiting in a queue that grows without limit:

{shedding_lines(service["levels"], settings.get("max_queue"))}

## Targets

{target_line(service["levels"], baseline)}
"""


def client_levels(text: str) -> list[int]:
    levels = [int(part) for part in text.split(",")]
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError(f"positive client counts expected, got {text!r}")
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="photos per level (256)")
    parser.add_argument("--clients", type=client_levels, default=[1, 4, 16, 64, 256],
                        help="concurrency levels, comma-separated (1,4,16,64,256)")  # fmt: skip
    parser.add_argument("--port", type=int, help="server port (a free one)")
    parser.add_argument("--data", type=Path, default=data_dir(), help="shared datasets folder")
    parser.add_argument("--out-report", type=Path, default=reports_dir() / "service.md")
    args = parser.parse_args()
    # A SIGTERM (`timeout`, a job runner) then unwinds like Ctrl-C, and the server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if max(args.clients) > args.images:
        parser.error(f"{max(args.clients)} clients need at least as many --images")
    raw = args.out_report.with_name(f"{args.out_report.stem}_results.json")
    results: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cpus": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "load_average": round(os.getloadavg()[0], 2),  # other work would skew every timing
        "scancap": __version__,
        "raw": raw.name,
    }
    with tempfile.TemporaryDirectory(prefix="scancap-service-") as folder:
        uploads = photo_uploads(Path(folder) / "photos", args.images, args.data)
        results["photos"] = describe_photos(uploads)
        results["baseline"] = measure_baseline(uploads, Path(folder))
        print(f"scancap run: {results['baseline']['photos_per_second']} photos/s", flush=True)
        port = args.port or free_port()
        results["service"] = measure_service(uploads, args.clients, port, Path(folder))
    args.out_report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(raw, json.dumps(results, indent=1))
    atomic_write_text(args.out_report, report_text(results))
    print(target_line(results["service"]["levels"], results["baseline"]))
    print(f"wrote {args.out_report} and {raw}")


if __name__ == "__main__":
    main()
