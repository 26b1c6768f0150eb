"""Classify pages read from files: one row per page, a bad file reported and never fatal."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from tqdm import tqdm

from scancap.batch import report_error
from scancap.io import ImageLoadError
from scancap.pages import Page

if TYPE_CHECKING:  # TensorFlow loads with the classifier, not with this module (`scancap --help`)
    from scancap.classify.model import Classifier, Prediction

CSV_COLUMNS = ["path", "is_photo", "p_photo", "subtype", "error", "file"]


def predict_pages(
    classifier: Classifier,
    pages: Sequence[Page],
    batch_size: int,
    max_pixels: int,
    quiet: bool,
) -> Iterator[tuple[Page, Prediction | ImageLoadError]]:
    """(page, prediction or load error) per page, in order, with a progress bar; each
    unreadable page is reported on stderr as it comes."""
    results = classifier.predict_files(pages, batch_size, max_pixels)
    for page, result in tqdm(results, total=len(pages), desc="classify", unit="img", disable=quiet):
        if isinstance(result, ImageLoadError):
            report_error(page, result.reason)
        yield page, result


def classify_files(
    files: list[Page],
    threshold: float | None,
    model_dir: Path | None,
    batch_size: int,
    max_pixels: int,
    quiet: bool,
) -> tuple[pd.DataFrame, int]:
    """One row per page, in input order; bad files get an error and do not stop the batch."""
    from scancap.classify.model import Classifier

    classifier = Classifier.load(model_dir, threshold)
    rows: list[dict[str, object]] = []
    for page, result in predict_pages(classifier, files, batch_size, max_pixels, quiet):
        row = dict.fromkeys(CSV_COLUMNS, "") | {"path": page.name, "file": page.location()}
        if isinstance(result, ImageLoadError):
            row["error"] = result.reason
        else:
            row |= {
                "is_photo": "true" if result.is_photo else "false",
                "p_photo": f"{result.p_photo:.6f}",
                "subtype": result.subtype,
            }
        rows.append(row)
    failures = sum(bool(row["error"]) for row in rows)
    return pd.DataFrame(rows, columns=CSV_COLUMNS), failures
