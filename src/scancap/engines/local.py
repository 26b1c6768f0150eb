"""The local engine: this process runs the batch, resumable through an SQLite ledger in OUT.

Pages are decoded in threads by pixel budget, composed batch by batch (`Pipeline`; the next
batch is classified while the photos of the one before are restored) and each finished item's
outputs are written and recorded in the ledger at once, so an interrupted run resumes where it
stopped and ends with the same manifest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scancap.batch import Loaded, load_batches, report_error, report_note
from scancap.config import RunConfig
from scancap.engines.ledger import Ledger
from scancap.engines.plan import list_run_inputs, warn_redone
from scancap.pages import Page
from scancap.pipeline.compose import Batch, Pipeline, Result, decode_page
from scancap.pipeline.outputs import RunSummary, finish_run, write_item_outputs
from scancap.pipeline.provenance import Provenance


def run(
    inputs: Sequence[str | Path],
    out: str | Path,
    config: RunConfig,
    models: Path | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> RunSummary:
    """Every page under `inputs` into `out`, with the models under `models` (else the shipped
    ones): the signature every engine has."""
    with Pipeline.load(config, models) as pipeline:
        return run_pipeline(pipeline, inputs, out, force, progress)


def run_pipeline(
    pipeline: Pipeline,
    inputs: list[str | Path],
    out: Path,
    force: bool = False,
    progress: bool = True,
) -> RunSummary:
    """Process every image under `inputs` into `out`, skipping what the ledger has finished.

    Files already under `out` are not inputs (a rerun must not read its own outputs). A
    rerun with other settings or models processes again what they produced, and says so.
    """
    config = pipeline.config
    out = Path(out)
    start = time.perf_counter()
    files, keys = list_run_inputs(inputs, out, config.pdf_dpi)
    sources = {page.file.resolve() for page in files}  # resolved once: outputs are not inputs
    provenance, previous = pipeline.provenance(), Provenance.read(out)
    settings = provenance.fingerprint()
    with Ledger(out) as ledger:
        if force:
            ledger.forget()
        todo = [page for page in files if ledger.finished(*keys[page], settings) is None]
        redone = sum(ledger.outdated(*keys[page], settings) for page in todo)
        if redone:
            warn_redone(redone, out, provenance, previous)
        provenance.write(out)
        bar = tqdm(total=len(files), initial=len(files) - len(todo), desc="scancap run",
                   unit="img", disable=not progress)  # fmt: skip

        def finish(pages: list[Page], batch: Batch) -> None:
            pipeline.finish_batch(batch)
            for page, (result, image) in zip(pages, batch.items, strict=True):
                thumbnails = write_item_outputs(result, page, image, out, config, sources)
                ledger.record(result.path, result.sha256, result.row(), thumbnails, settings)
                if result.error:  # a failed item, or a page whose text could not be read
                    report_error(page, result.error)
                if result.notes:  # e.g. metadata dropped, a text page with no text found
                    report_note(page, result.notes)
                bar.update()

        decode = partial(decode_page, max_pixels=config.max_pixels)
        pending: tuple[list[Page], Batch] | None = None
        batches = load_batches(
            todo,
            config.batch_size,
            workers=config.workers,
            decode=decode,
            pixel_budget=config.pixel_budget,
        )
        for loaded in batches:
            items = [
                (Result(*keys[page], seconds_decode=round(seconds, 4), page=page), image)
                for page, (image, seconds) in loaded
            ]
            # Restoration of the pending batch overlaps this batch's classification, unless
            # the two together are over the pixel budget: then memory comes first.
            if pending is not None and _pixels(pending[1].items) + _pixels(items) > (
                config.pixel_budget
            ):
                finish(*pending)
                pending = None
            started = ([page for page, _ in loaded], pipeline.start_batch(items))
            if pending is not None:
                finish(*pending)
            pending = started
        if pending is not None:
            finish(*pending)
        bar.close()
        finished = [(page, ledger.finished(*keys[page], settings)) for page in files]
        rows = [row for _, row in finished if row is not None]
        earlier = set(files) - set(todo)
        for page, row in finished:  # the exit status counts them: each gets its line again
            if page in earlier and row is not None and row["error"]:
                report_error(page, f"{row['error']} (from an earlier run)")
        return finish_run(out, files, rows, ledger.thumbnails, (len(todo), redone), start,
                          provenance)  # fmt: skip


def _pixels(items: list[tuple[Result, Loaded]]) -> int:
    return sum(
        image.shape[0] * image.shape[1] for _, image in items if isinstance(image, np.ndarray)
    )
