"""`scancap run --engine ray`: the same pipeline, scheduled by Ray Data over a cluster.

The driver lists the pages and hashes their files, as the local engine does, and hands Ray
Data the ones not finished yet. A pool of actors, one per CPU of the cluster, each holding the
whole pipeline (loaded once per actor), takes them a batch at a time and runs the local
engine's per-item code on it: decode, classify, restore, caption, write the item's outputs. So
a photo never travels between nodes as pixels: only file names go in and manifest rows come
out.

What is done is recorded per batch, not in the local engine's SQLite ledger (one machine's
file): each actor writes its batch's rows, as one Parquet file named after the batch's items,
under `OUT/parts/<settings fingerprint>/`, once the batch's outputs are written. A rerun after a
crash (a node lost, the driver killed) reads those files and hands Ray only what they lack;
the driver then merges every part into the manifest, `captions.jsonl` and the report, each
input exactly once. OUT must be a path every node can write (a shared filesystem).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from scancap.batch import report_error
from scancap.config import RunConfig
from scancap.io import atomic_write_bytes
from scancap.pages import Page
from scancap.pipeline.provenance import Provenance
from scancap.pipeline.report import Thumbnails
from scancap.pipeline.run import (
    MANIFEST_COLUMNS,
    Pipeline,
    Result,
    RunSummary,
    decode_page,
    finish_run,
    list_run_inputs,
    model_folders,
    run_provenance,
    warn_redone,
    write_item_outputs,
)
from scancap.quiet import descriptors_to

PARTS_DIR = "parts"
RAY_LOG = "ray.log"  # Ray's own lines, kept out of the terminal
Done = dict[tuple[str, str], tuple[dict[str, Any], Thumbnails]]  # (name, sha256) -> row, thumbs


class RayJobError(RuntimeError):
    """The cluster stopped the job (a node lost, an actor killed): rerun to resume."""


class RayConnectError(RuntimeError):
    """No Ray cluster could be joined at the address given."""


def run_on_ray(
    config: RunConfig,
    models: Path | None,
    inputs: list[str | Path],
    out: Path,
    force: bool = False,
    progress: bool = True,
    address: str | None = None,
) -> RunSummary:
    """Process every page under `inputs` into `out` on Ray; same outputs as `run`."""
    out = Path(out)
    start = time.perf_counter()
    files, keys = list_run_inputs(inputs, out, config.pdf_dpi)
    dirs = model_folders(models)
    provenance = run_provenance(config, dirs, _threshold(config, dirs["classifier"]))
    previous, fingerprint = Provenance.read(out), provenance.fingerprint()
    parts = out / PARTS_DIR / fingerprint
    if force:
        shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
    done = read_parts(parts)
    todo = [page for page in files if keys[page] not in done]
    redone = _finished_with_other_settings(out, fingerprint, {keys[page] for page in todo})
    if redone:
        warn_redone(redone, out, provenance, previous)
    provenance.write(out)
    if todo:
        _process(config, models, todo, keys, out, parts, progress, address, len(files))
        done = read_parts(parts)
    rows = [done[keys[page]][0] for page in files if keys[page] in done]
    thumbnails = {row["path"]: thumbs for row, thumbs in done.values()}
    return finish_run(out, files, rows, lambda path: thumbnails.get(path, []),
                      (len(todo), redone), start, provenance)  # fmt: skip


def _threshold(config: RunConfig, classifier_dir: Path) -> float:
    """The threshold in force, read from the model card (the driver loads no model)."""
    if config.threshold is not None:
        return config.threshold
    return float(json.loads((classifier_dir / "calibration.json").read_text())["threshold"])


def _process(
    config: RunConfig,
    models: Path | None,
    todo: list[Page],
    keys: dict[Page, tuple[str, str]],
    out: Path,
    parts: Path,
    progress: bool,
    address: str | None,
    total: int,
) -> None:
    """Start or join Ray, then run the actor pool over `todo`."""
    import ray

    with _ray_lines_to(out / RAY_LOG) as terminal:
        _start_ray(address, config.workers)
        bar = tqdm(total=total, initial=total - len(todo), desc="scancap run (ray)",
                   unit="img", disable=not progress, file=terminal)  # fmt: skip
        try:
            for row in _dataset(config, models, todo, keys, out, parts).iter_rows():
                if row["status"] == "error":
                    report_error(row["page"], row["error"], terminal)
                bar.update()
        except ray.exceptions.RayError as error:
            raise RayJobError(f"the Ray job stopped ({type(error).__name__})") from error
        finally:  # disconnect (or stop the local Ray) while its late messages go to the log
            bar.close()
            ray.shutdown()


def _dataset(
    config: RunConfig,
    models: Path | None,
    todo: list[Page],
    keys: dict[Page, tuple[str, str]],
    out: Path,
    parts: Path,
) -> Any:
    """`todo` as a Ray dataset mapped by a pool of `PageWorker` actors, one per CPU."""
    import ray

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    items = [
        {"file": str(page.file.resolve()), "name": page.name, "number": page.number or 0,
         "sha256": keys[page][1]}
        for page in todo
    ]  # fmt: skip
    # Batches small enough that every actor gets several (the last round leaves actors idle),
    # large enough for the models' batching.
    batch_size = max(1, min(config.batch_size, -(-len(items) // (4 * cpus))))
    worker_options = {
        "config": config.model_dump(mode="json"),
        "models": str(models.resolve()) if models else None,
        "out": str(out.resolve()),
        "parts": str(parts.resolve()),
        "sources": sorted({str(page.file.resolve()) for page in todo}),
    }
    blocks = -(-len(items) // batch_size)
    return ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        PageWorker,
        fn_constructor_kwargs=worker_options,
        batch_size=batch_size,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=cpus),
        num_cpus=1,
    )


@contextlib.contextmanager
def _ray_lines_to(log: Path) -> Iterator[TextIO]:
    """While Ray runs, file descriptors 1 and 2 (where Ray's C++ core, its loggers and the
    cluster's relayed messages write) go to `log`; scancap's progress bar and error lines go
    to the terminal's stderr, which this yields."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        os.fdopen(os.dup(2), "w", buffering=1) as terminal,  # before fd 2 goes to the log
        log.open("ab") as sink,
        descriptors_to(sink.fileno(), (1, 2)),
    ):
        yield terminal


def _start_ray(address: str | None, local_cpus: int) -> None:
    """Join the cluster at `address`, or start a local Ray on `local_cpus` CPUs; quietly."""
    import ray

    if ray.is_initialized():
        return
    for name in ("ray", "ray.data"):  # Ray's start-up and execution notes are not the user's
        logging.getLogger(name).setLevel(logging.ERROR)
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address:
        _require_listening(address)
        options["address"] = address
    else:  # "local": a new instance, even where another one runs on this machine
        options |= {"address": "local", "num_cpus": local_cpus, "include_dashboard": False}
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:  # no cluster, or not ours
        reason = str(error).splitlines()[0]
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayConnectError(f"cannot start or join {where} ({reason})") from error
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def _require_listening(address: str, timeout: float = 10.0) -> None:
    """Fail in seconds when nothing listens at host:port (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise RayConnectError(f"no Ray cluster answers at {address} ({error})") from error


class PageWorker:
    """A Ray actor: the pipeline loaded once; a batch of pages in, their rows recorded."""

    def __init__(
        self,
        config: dict[str, Any],
        models: str | None,
        out: str,
        parts: str,
        sources: list[str],
    ) -> None:
        _one_thread_per_actor()
        # One CPU per actor: restoration and decoding on the actor's own thread.
        self.config = RunConfig(**(config | {"workers": 1}))
        self.pipeline = Pipeline.load(self.config, Path(models) if models else None)
        self.out, self.parts = Path(out), Path(parts)
        self.sources = {Path(source) for source in sources}

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Decode, classify, restore, caption and write each page; record the batch."""
        pages = [
            Page(Path(row.file), row.name, int(row.number) or None, self.config.pdf_dpi)
            for row in batch.itertuples()
        ]
        loaded = [decode_page(page, self.config.max_pixels) for page in pages]
        items = [
            (Result(page.name, sha256, seconds_decode=round(seconds, 4)), image)
            for page, sha256, (image, seconds) in zip(pages, batch["sha256"], loaded, strict=True)
        ]
        self.pipeline.analyze_loaded(items)
        records = []
        for page, (result, image) in zip(pages, items, strict=True):
            thumbs = write_item_outputs(result, page, image, self.out, self.config, self.sources)
            records.append(result.row() | {"thumbnails": json.dumps(thumbs)})
        write_part(self.parts, records)
        return pd.DataFrame(
            {"page": [str(page) for page in pages], "status": [r["status"] for r in records],
             "error": [r["error"] for r in records]}
        )  # fmt: skip


def _one_thread_per_actor() -> None:
    """Each actor owns one CPU: TensorFlow and OpenCV must not spread over the node's cores."""
    import cv2
    import tensorflow as tf

    cv2.setNumThreads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def write_part(parts: Path, records: list[dict[str, Any]]) -> Path:
    """One batch's rows as a Parquet file named after its items, written atomically. Arrow
    from plain values keeps an integer column with a missing value integer."""
    key = hashlib.sha1("".join(r["path"] + "\n" + r["sha256"] for r in records).encode())
    table = pa.Table.from_pylist([{c: r[c] for c in [*MANIFEST_COLUMNS, "thumbnails"]}
                                  for r in records])  # fmt: skip
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer)
    return atomic_write_bytes(
        parts / f"{key.hexdigest()[:24]}.parquet", buffer.getvalue().to_pybytes()
    )


def read_parts(parts: Path) -> Done:
    """Every finished row recorded under `parts`, by (name, content hash)."""
    done: Done = {}
    for path in sorted(parts.glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():  # plain values and None, as the ledger's
            thumbs = [tuple(pair) for pair in json.loads(row.pop("thumbnails"))]
            done[(row["path"], row["sha256"])] = (row, thumbs)
    return done


def _finished_with_other_settings(out: Path, fingerprint: str, todo: set[tuple[str, str]]) -> int:
    """How many of `todo` were finished in `out` under other settings or models."""
    others = [p for p in (out / PARTS_DIR).glob("*") if p.is_dir() and p.name != fingerprint]
    return len(todo & {key for folder in others for key in read_parts(folder)})


def ray_available() -> bool:
    """Whether the `ray` extra is installed."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def require_ray() -> None:
    """Exit with a sentence (status 2) when the Ray engine is asked for but not installed."""
    if not ray_available():
        print("scancap run: --engine ray needs Ray: pip install 'scancap[ray]'", file=sys.stderr)
        raise SystemExit(2)
