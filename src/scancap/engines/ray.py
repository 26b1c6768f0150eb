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
input exactly once. OUT must be a path every node can write (a shared filesystem), or a URI
of a filesystem every node reaches, as inputs may be (`scancap.engines.storage`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from scancap.batch import Loaded, first_line, report_error, report_note
from scancap.config import RunConfig
from scancap.engines.plan import list_run_inputs, warn_redone
from scancap.engines.storage import (
    OutputTree,
    RemoteFile,
    StorageError,
    fetched,
    is_remote,
    list_remote_pages,
    local_path,
)
from scancap.io import ImageLoadError, atomic_write_bytes
from scancap.ocr.reader import ocr_unavailable
from scancap.pages import Page
from scancap.pipeline.compose import (
    MANIFEST_COLUMNS,
    Pipeline,
    Result,
    decode_page,
    model_folders,
    run_provenance,
)
from scancap.pipeline.outputs import RunSummary, finish_run, write_item_outputs
from scancap.pipeline.provenance import RUN_FILE, Provenance
from scancap.pipeline.report import Thumbnails
from scancap.quiet import descriptors_to

PARTS_DIR = "parts"
RAY_LOG = "ray.log"  # Ray's own lines, kept out of the terminal
Done = dict[tuple[str, str], tuple[dict[str, Any], Thumbnails]]  # (name, sha256) -> row, thumbs


class RayJobError(RuntimeError):
    """The cluster stopped the job (a node lost, an actor killed): rerun to resume."""


class RayConnectError(RuntimeError):
    """No Ray cluster could be joined at the address given."""


def run(
    inputs: Sequence[str | Path],
    out: str | Path,
    config: RunConfig,
    models: Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    address: str | None = None,
) -> RunSummary:
    """Every page under `inputs` into `out` on Ray, with the local engine's signature and
    outputs; `address`: the cluster to join (else a local Ray). Inputs and `out` may be local
    paths or URIs (`scancap.engines.storage`)."""
    tree = OutputTree(out)
    try:
        summary = _run(config, models, list(inputs), tree, force, progress, address)
        tree.publish()
        return summary
    except BaseException:  # keep what the driver wrote (run.json, Ray's log) for the rerun
        with contextlib.suppress(StorageError):  # the error under way is the one to tell
            tree.publish()
        raise
    finally:
        tree.close()


def _run(
    config: RunConfig,
    models: Path | None,
    inputs: list[str | Path],
    tree: OutputTree,
    force: bool,
    progress: bool,
    address: str | None,
) -> RunSummary:
    """`run` with OUT opened: list, skip what the parts record, process the rest on
    Ray, then merge every part into the run's outputs (in the staging folder)."""
    start = time.perf_counter()
    files, keys, remotes = list_inputs(inputs, tree, config.pdf_dpi)
    ocr_unavailable(config)  # said on the driver's terminal; the actors' notes go to ray.log
    dirs = model_folders(models)
    provenance = run_provenance(config, dirs, _threshold(config, dirs["classifier"]))
    tree.pull(RUN_FILE)
    tree.pull(RAY_LOG)  # appended to, as a local OUT's is
    previous, fingerprint = Provenance.read(tree.staging), provenance.fingerprint()
    parts = f"{PARTS_DIR}/{fingerprint}"
    if force:
        tree.delete_folder(PARTS_DIR)
    done = read_parts(tree, parts)
    todo = [page for page in files if keys[page] not in done]
    redone = _finished_with_other_settings(tree, fingerprint, {keys[page] for page in todo})
    if redone:
        warn_redone(redone, tree.display(), provenance, previous)
    provenance.write(tree.staging)
    tree.publish()  # run.json first: an OUT nobody can write to fails here, before Ray starts
    if todo:
        _process(config, models, _items(todo, keys, remotes), tree, parts, progress, address,
                 len(files))  # fmt: skip
        done = read_parts(tree, parts)
    rows = [done[keys[page]][0] for page in files if keys[page] in done]
    thumbnails = {row["path"]: thumbs for row, thumbs in done.values()}
    links = {page.name: _link(page, remotes[page]) for page in files if page in remotes}
    summary = finish_run(tree.staging, files, rows, lambda path: thumbnails.get(path, []),
                         (len(todo), redone), start, provenance, links)  # fmt: skip
    return dataclasses.replace(summary, out=tree.display())


def list_inputs(
    inputs: list[str | Path], tree: OutputTree, pdf_dpi: int
) -> tuple[list[Page], dict[Page, tuple[str, str]], dict[Page, RemoteFile]]:
    """The pages of the local inputs, then those of the URIs, each with its key (name, content
    hash); a page from a URI also with its remote file."""
    local = [local_path(item) for item in inputs if not is_remote(item)]
    uris = [str(item) for item in inputs if is_remote(item)]
    files, keys = list_run_inputs(local, tree.staging, pdf_dpi, required=not uris)
    remotes: dict[Page, RemoteFile] = {}
    taken: set[str] = set()  # a file reached twice (a folder and a file in it) is listed once
    for uri in uris:
        listed = list_remote_pages(uri, pdf_dpi, tree)
        fresh = [(page, remote, digest) for page, remote, digest in listed
                 if remote.link() not in taken]  # fmt: skip
        taken |= {remote.link() for _, remote, _ in listed}
        for page, remote, digest in fresh:
            files.append(page)
            keys[page] = (page.name, digest)
            remotes[page] = remote
    if not files:
        raise FileNotFoundError(f"no images or PDFs found in {', '.join(map(str, inputs))}")
    return files, keys, remotes


def _link(page: Page, remote: RemoteFile) -> str:
    """A remote page's URI, as the report links it and error lines name it."""
    return remote.link() + (f"#page={page.number}" if page.number is not None else "")


def _threshold(config: RunConfig, classifier_dir: Path) -> float:
    """The threshold in force, read from the model card (the driver loads no model)."""
    if config.threshold is not None:
        return config.threshold
    return float(json.loads((classifier_dir / "calibration.json").read_text())["threshold"])


def _items(
    todo: list[Page], keys: dict[Page, tuple[str, str]], remotes: dict[Page, RemoteFile]
) -> list[dict[str, Any]]:
    """What an actor needs of each page: where its file is, its name and its key."""
    items = []
    for page in todo:
        remote = remotes.get(page)
        items.append(
            {"filesystem": remote.uri if remote else "",
             "file": remote.path if remote else str(page.file.resolve()),
             "shown": _link(page, remote) if remote else str(page),
             "name": page.name, "number": page.number or 0, "frame": page.index,
             "sha256": keys[page][1]}
        )  # fmt: skip
    return items


def _process(
    config: RunConfig,
    models: Path | None,
    items: list[dict[str, Any]],
    tree: OutputTree,
    parts: str,
    progress: bool,
    address: str | None,
    total: int,
) -> None:
    """Start or join Ray, then run the actor pool over `items`."""
    import ray

    with _ray_lines_to(tree.staging / RAY_LOG) as terminal:
        _start_ray(address, config.workers)
        bar = tqdm(total=total, initial=total - len(items), desc="scancap run (ray)",
                   unit="img", disable=not progress, file=terminal)  # fmt: skip
        try:
            for row in _dataset(config, models, items, tree, parts).iter_rows():
                if row["error"]:
                    report_error(row["page"], row["error"], terminal)
                if row["notes"]:
                    report_note(row["page"], row["notes"], terminal)
                bar.update()
        except ray.exceptions.RayError as error:
            cause = getattr(error, "cause", None) or error  # an actor's own exception, if any
            reason = f"{type(cause).__name__}: {first_line(str(cause))}"
            raise RayJobError(f"the Ray job stopped ({reason})") from error
        finally:  # disconnect (or stop the local Ray) while its late messages go to the log
            bar.close()
            ray.shutdown()


def _dataset(
    config: RunConfig,
    models: Path | None,
    items: list[dict[str, Any]],
    tree: OutputTree,
    parts: str,
) -> Any:
    """`items` as a Ray dataset mapped by a pool of `PageWorker` actors, one per CPU."""
    import ray

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    # Batches small enough that every actor gets several (the last round leaves actors idle),
    # large enough for the models' batching.
    batch_size = max(1, min(config.batch_size, -(-len(items) // (4 * cpus))))
    worker_options = {
        "config": config.model_dump(mode="json"),
        "models": str(models.resolve()) if models else None,
        "out": tree.location if tree.remote else tree.root,
        "parts": parts,
        "sources": sorted({item["file"] for item in items if not item["filesystem"]}),
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
        self.out, self.parts = out, parts
        self.sources = {Path(source) for source in sources}

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Decode, classify, restore, caption, read and write each page; record the batch."""
        rows = list(batch.itertuples())
        remote = [RemoteFile(row.filesystem, row.file) for row in rows if row.filesystem]
        tree = OutputTree(self.out)  # a remote OUT: this batch's own staging folder
        try:
            with fetched(remote) as copies:
                records = self._process(rows, copies, tree.staging)
            write_part(tree.staging / self.parts, records)
            tree.publish(last=PARTS_DIR)
        finally:
            tree.close()
        return pd.DataFrame(
            {"page": [row.shown for row in rows], "status": [r["status"] for r in records],
             "error": [r["error"] for r in records], "notes": [r["notes"] for r in records]}
        )  # fmt: skip

    def _process(
        self, rows: list[Any], copies: dict[RemoteFile, Path | str], staging: Path
    ) -> list[dict[str, Any]]:
        """The local engine's per-item code on the batch's pages; their rows, with thumbnails."""
        pages = [self._page(row, copies) for row in rows]
        items = [
            (Result(row.name, row.sha256, seconds_decode=round(seconds, 4), page=page,
                    file=row.shown if row.filesystem else ""), image)  # a URI, not the copy
            for row, (page, image, seconds) in zip(rows, pages, strict=True)
        ]  # fmt: skip
        self.pipeline.analyze_loaded(items)
        records = []
        for (page, _, _), (result, image) in zip(pages, items, strict=True):
            thumbs = write_item_outputs(result, page, image, staging, self.config, self.sources)
            records.append(result.row() | {"thumbnails": json.dumps(thumbs)})
        return records

    def _page(self, row: Any, copies: dict[RemoteFile, Path | str]) -> tuple[Page, Loaded, float]:
        """The row's page (a remote file: its local copy) decoded, with the seconds it took."""
        copy = copies[RemoteFile(row.filesystem, row.file)] if row.filesystem else Path(row.file)
        if isinstance(copy, str):  # the remote file could not be read
            page = Page(Path(row.file), row.name, int(row.number) or None, self.config.pdf_dpi,
                        int(row.frame))  # fmt: skip
            return page, ImageLoadError(row.shown, copy), 0.0
        page = Page(copy, row.name, int(row.number) or None, self.config.pdf_dpi, int(row.frame))
        return page, *decode_page(page, self.config.max_pixels)


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


def read_parts(tree: OutputTree, parts: str) -> Done:
    """Every finished row recorded under `parts` (relative to OUT), by (name, content hash)."""
    done: Done = {}
    for path in tree.files(parts, ".parquet"):
        try:  # plain values and None, as the ledger's
            part = pq.read_table(path, filesystem=tree.fs).to_pylist()
        except (pa.ArrowException, OSError):  # cut short (a filesystem without atomic
            continue  # writes): its batch is done again
        for row in part:
            thumbs = [tuple(pair) for pair in json.loads(row.pop("thumbnails"))]
            done[(row["path"], row["sha256"])] = (row, thumbs)
    return done


def _finished_with_other_settings(
    tree: OutputTree, fingerprint: str, todo: set[tuple[str, str]]
) -> int:
    """How many of `todo` were finished in OUT under other settings or models."""
    others = [name for name in tree.folders(PARTS_DIR) if name != fingerprint]
    return len(todo & {key for name in others for key in read_parts(tree, f"{PARTS_DIR}/{name}")})


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
