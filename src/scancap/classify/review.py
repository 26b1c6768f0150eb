"""The review queue: the items of a run most worth a person's look, most useful first.

`scancap review` reads what a run decided (its OUT folder's manifest, or a `scancap classify`
CSV), decides the items again with the classifier given (an adapted one continues where the last
review stopped) and puts the least certain decisions first (`scancap.classify.adapt.
margin_order`, chosen on archives of held-out sources). The person fills the `label` column of
the file it writes, and `scancap adapt` learns from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm import tqdm

from scancap.batch import load_batches, report_error
from scancap.classify.adapt import margin_order
from scancap.pages import Page, pages_named

if TYPE_CHECKING:  # TensorFlow loads with the classifier, not with this module
    from scancap.classify.model import Classifier

REVIEW_COLUMNS = ["path", "p_photo", "predicted", "label"]
MANIFEST = "manifest.parquet"


class ReviewError(ValueError):
    """What `scancap review` cannot read; the message names the file and the reason."""


def read_items(source: Path) -> list[Page]:
    """The pages a run classified without error, from its OUT folder or a classify CSV, as
    their `file` column locates them."""
    source = Path(source)
    table = _read_table(source)
    if "file" not in table.columns:
        raise ReviewError(
            f"{source}: no file column (written by an older scancap): run it again to record "
            "where each item is"
        )
    kept = table[(table["error"].fillna("") == "") & (table["file"].fillna("") != "")]
    pages = []
    for location in kept["file"]:
        try:
            pages += pages_named(str(location), Path("/"))
        except ValueError as error:
            raise ReviewError(f"{source}: {error}") from None
    if not pages:
        raise ReviewError(f"{source}: no classified item to review")
    return pages


def _read_table(source: Path) -> pd.DataFrame:
    if source.is_dir():
        if not (source / MANIFEST).exists():
            raise ReviewError(f"{source}: not a scancap run folder (no {MANIFEST})")
        return pd.read_parquet(source / MANIFEST)
    if not source.exists():
        raise ReviewError(f"{source}: no such file or folder")
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as error:
        raise ReviewError(f"{source}: not a CSV file ({error})") from None
    if "p_photo" not in table.columns:
        raise ReviewError(f"{source}: not a scancap classify CSV or run folder (no p_photo)")
    return table.assign(error=table.get("error", ""))


def review_queue(
    classifier: Classifier,
    pages: list[Page],
    limit: int,
    batch_size: int = 32,
    max_pixels: int | None = None,
    quiet: bool = False,
) -> pd.DataFrame:
    """The `limit` pages most worth a look, in order, with the classifier's p(photo) and
    class and an empty `label` column for the person; unreadable pages are reported and left
    out."""
    kept, margins, rows = [], [], []
    bar = tqdm(total=len(pages), desc="review", unit="img", disable=quiet)
    options = {"max_pixels": max_pixels} if max_pixels else {}
    for batch in load_batches(pages, batch_size, **options):
        images = [(page, item) for page, item in batch if isinstance(item, np.ndarray)]
        for page, item in batch:
            if not isinstance(item, np.ndarray):
                report_error(page, item.reason)
        if images:
            predictions = classifier.predict([i for _, i in images])
            for (page, _), prediction in zip(images, predictions, strict=True):
                kept.append(page)
                rows.append((page.location(), prediction.p_photo, prediction.subtype))
                margins.append(classifier.calibration.margins_of(prediction.p_photo))
        bar.update(len(batch))
    bar.close()
    if not kept:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    order = margin_order(np.array(margins))[:limit]
    table = pd.DataFrame([rows[i] for i in order], columns=REVIEW_COLUMNS[:3])
    return table.assign(p_photo=table["p_photo"].round(6), label="")
