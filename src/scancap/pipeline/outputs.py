"""What every engine writes: an item's outputs as it finishes, and the run's outputs at the end.

An item: its restored photo (with its caption file), its sorted copy, its text and searchable
PDF, and its report thumbnails. The run: the manifest (Parquet and CSV), `captions.jsonl` and
the HTML report, from every row. Every write is atomic; no output ever replaces an input.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scancap.batch import Loaded, error_reason
from scancap.caption.grounding import parse_tags
from scancap.config import RunConfig
from scancap.io import atomic_write_bytes, atomic_write_text, output_path, save_image
from scancap.pages import Page, page_metadata
from scancap.pipeline.compose import MANIFEST_COLUMNS, Result
from scancap.pipeline.provenance import Provenance
from scancap.pipeline.report import (
    REPORT_FILE,
    Thumbnails,
    row_class,
    was_restored,
    write_report,
    write_thumbnails,
)

MANIFEST_FILES = ("manifest.parquet", "manifest.csv")


CAPTIONS_FILE = "captions.jsonl"


PHOTOS_DIR = "photos"


SORTED_DIR = "sorted"


TEXTS_DIR = "texts"


SEARCHABLE_DIR = "searchable"


# --- an item's outputs, written as it finishes ---------------------------------------------


def write_item_outputs(
    result: Result,
    source: Page,
    image: Loaded,
    out: Path,
    config: RunConfig,
    inputs: set[Path],
) -> Thumbnails:
    """The restored photo (and its caption file) or the sorted copy, and the report's
    thumbnails: before and after for a restored photo, one image for any other.

    A write that fails turns the row into an error: the batch goes on. `inputs` are resolved.
    """
    if result.status != "ok" or not isinstance(image, np.ndarray):
        return []
    try:
        if result.is_photo:
            target = output_path(out / PHOTOS_DIR, source.output_name())
            _refuse_input(target, inputs)
            metadata = result.metadata or page_metadata(source)  # read when the batch started
            save_image(target, result.restored, metadata=metadata)
            if config.caption_txt:
                atomic_write_text(target.with_suffix(".txt"), result.caption + "\n")
            result.output = target.relative_to(out).as_posix()
            if was_restored(result.row()):
                views = [("before", image), ("after", result.restored)]
                return write_thumbnails(out, result.path, views)
            return write_thumbnails(out, result.path, [("unchanged", image)])
        if config.copy_non_photos:
            target = _sorted_copy(source, image, out / SORTED_DIR / result.subtype, inputs)
            result.output = target.relative_to(out).as_posix()
        _write_text(result, source, out, inputs)
        return write_thumbnails(out, result.path, [("original", image)])
    except (OSError, ValueError) as error:
        result.fail(f"could not write the output: {error_reason(error)}")
        return []
    finally:
        result.restored = result.pdf = None  # written: do not keep the pixels


def _write_text(result: Result, source: Page, out: Path, inputs: set[Path]) -> None:
    """A page's text as `texts/<name>.txt` and, when made, its searchable PDF as
    `searchable/<name>.pdf`, the name keeping its suffix (scan.jpg and scan.png differ)."""
    name = source.output_name()
    if result.text:
        target = out / TEXTS_DIR / name.with_name(name.name + ".txt")
        _refuse_input(target, inputs)
        atomic_write_text(target, result.text + "\n")
        result.text_file = target.relative_to(out).as_posix()
    if result.pdf:
        target = out / SEARCHABLE_DIR / name.with_name(name.name + ".pdf")
        _refuse_input(target, inputs)
        atomic_write_bytes(target, result.pdf)
        result.text_pdf = target.relative_to(out).as_posix()


def _sorted_copy(source: Page, image: np.ndarray, folder: Path, inputs: set[Path]) -> Path:
    """The file itself, unmodified; a page of a document as an image of that page."""
    if source.number is None:
        target = folder / source.output_name()
        _refuse_input(target, inputs)
        atomic_write_bytes(target, source.file.read_bytes())
        return target
    target = output_path(folder, source.output_name())
    _refuse_input(target, inputs)
    return save_image(target, image)


def _refuse_input(target: Path, inputs: set[Path]) -> None:
    if target.resolve() in inputs:
        raise ValueError(f"{target}: refusing to overwrite an input image")


# --- the run's outputs, from every row ----------------------------------------------------


@dataclass
class RunSummary:
    """What `scancap run` prints at the end."""

    inputs: int
    processed: int
    resumed: int
    redone: int  # finished before with other settings or models, processed again
    counts: dict[str, int]
    errors: int
    seconds: float
    out: Path | str  # a local folder, or the URI a Ray run wrote to

    @property
    def throughput(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        classes = ", ".join(f"{name} {count}" for name, count in sorted(self.counts.items()))
        return (
            f"{self.inputs} inputs: {classes}\n"
            f"errors: {self.errors}; processed {self.processed} in {self.seconds:.1f} s "
            f"({self.throughput:.1f} images/s), {self.resumed} already done"
            + (f", {self.redone} redone with new settings" if self.redone else "")
            + "\n"
            f"report: {self.out}/{REPORT_FILE}\nmanifest: {self.out}/{MANIFEST_FILES[0]}"
        )


def finish_run(
    out: Path,
    files: list[Page],
    rows: list[dict[str, Any]],
    thumbnails: Callable[[str], Thumbnails],
    processed_redone: tuple[int, int],
    start: float,
    provenance: Provenance,
    links: dict[str, str] | None = None,
) -> RunSummary:
    """The run's summary and its batch outputs (manifest, captions, report), from every row.
    The report links each page to its file, or to its entry in `links` (a remote file)."""
    processed, redone = processed_redone
    counts = Counter(row_class(row) for row in rows)
    # Failed items, and items that kept their class but whose text could not be read.
    errors = counts.pop("error", 0) + sum(bool(row["error"]) for row in rows
                                          if row["status"] == "ok")  # fmt: skip
    summary = RunSummary(len(files), processed, len(files) - processed, redone, dict(counts),
                         errors, time.perf_counter() - start, out)  # fmt: skip
    links = links or {}
    originals = {page.name: links.get(page.name) or _original_link(page) for page in files}
    _write_run_outputs(out, rows, thumbnails, originals, summary, provenance)
    return summary


def _write_run_outputs(
    out: Path,
    rows: list[dict[str, Any]],
    thumbnails: Callable[[str], Thumbnails],
    originals: dict[str, str],
    summary: RunSummary,
    provenance: Provenance,
) -> None:
    """Manifest (Parquet and CSV), captions.jsonl and the HTML report, each atomically."""
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    buffer = io.BytesIO()
    manifest.to_parquet(buffer, index=False)
    atomic_write_bytes(out / MANIFEST_FILES[0], buffer.getvalue())
    atomic_write_text(out / MANIFEST_FILES[1], manifest.to_csv(index=False))
    captions = [
        json.dumps(
            {
                "path": row["output"] or row["path"],
                "source": row["path"],
                "caption": row["caption"],
                "caption_source": row.get("caption_source") or "",
                "tags": parse_tags(row.get("tags") or ""),
                "objects": json.loads(row.get("objects") or "[]"),
                "object_counts": row.get("object_counts") or "",
            }
        )
        for row in rows
        if row["status"] == "ok" and row["is_photo"]
    ]
    atomic_write_text(out / CAPTIONS_FILE, "".join(line + "\n" for line in captions))
    write_report(out, rows, thumbnails, originals.__getitem__,
                 report_summary(summary, provenance))  # fmt: skip


def report_summary(summary: RunSummary, provenance: Provenance) -> list[tuple[str, str]]:
    """The report's header: what came in, what came out, how fast, with which settings."""
    classes = ", ".join(f"{name} {count}" for name, count in sorted(summary.counts.items()))
    earlier = f"; {summary.resumed} from earlier runs with the same settings (ledger)"
    processed = (
        f"{summary.processed} in {summary.seconds:.1f} s ({summary.throughput:.1f} images/s)"
        + (earlier if summary.resumed else "")
        + (f"; {summary.redone} redone with new settings" if summary.redone else "")
    )
    settings = ", ".join(
        f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in provenance.settings.items()
    )
    models = ", ".join(f"{name} {digest[:12]}" for name, digest in provenance.models.items())
    return [
        ("inputs", f"{summary.inputs}: {classes}" if classes else str(summary.inputs)),
        ("errors", str(summary.errors)),
        ("processed", processed),
        ("settings", settings),
        ("models", f"{models} (run.json)"),
        ("scancap", provenance.scancap),
    ]


def _original_link(page: Page) -> str:
    """A link to the input file (to its page, for a document), from the report's folder."""
    link = page.file.resolve().as_uri()
    return f"{link}#page={page.number}" if page.number is not None else link
