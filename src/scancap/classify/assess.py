"""How well the classifier sorts a person's own labelled images (`scancap evaluate classifier`).

`read_labels` reads a CSV of `path` and `label`, `predict_labelled` runs the classifier on
those pages and `assess` measures it: photo-or-not accuracy, photo recall and precision, the
share of paintings kept out, ROC-AUC, the subtype given to non-photos and the confusion table,
with seeded bootstrap 95% intervals (`scancap.classify.metrics`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scancap.classify.data import LABELS, PHOTO
from scancap.classify.files import predict_pages
from scancap.classify.metrics import (
    BOOTSTRAP_ROUNDS,
    PAINTING,
    binary_metrics,
    bootstrap,
    format_interval,
)
from scancap.classify.model import Classifier
from scancap.io import ImageLoadError
from scancap.page_table import read_page_table
from scancap.pages import DEFAULT_DPI

# (name in the results, line of the printed table, why it may be missing)
MEASURES = (
    ("accuracy", "accuracy (photo or not)", ""),
    ("photo_recall", "photo recall", "no photo among the labels"),
    ("photo_precision", "photo precision", "nothing called a photo"),
    ("paintings_kept_out", "paintings kept out", "no painting among the labels"),
    ("roc_auc", "ROC-AUC", "needs photos and non-photos"),
    ("subtype_accuracy", "subtype of non-photos", "no non-photo among the labels"),
)


def read_labels(table: Path, dpi: int = DEFAULT_DPI) -> pd.DataFrame:
    """One row per labelled page: line, name, page and label (one of `LABELS`); a bad row is a
    `scancap.page_table.TableError` naming its line."""
    return read_page_table(table, ["label"], dpi, choices={"label": LABELS})


def predict_labelled(
    labels: pd.DataFrame,
    model_dir: Path | None,
    threshold: float | None,
    batch_size: int,
    max_pixels: int,
    quiet: bool,
) -> tuple[pd.DataFrame, float]:
    """`labels` with the classifier's p_photo and predicted class (its subtype column) added,
    and error (an unreadable page, reported on stderr); and the threshold it decided with."""
    classifier = Classifier.load(model_dir, threshold)
    pages = list(labels["page"])
    verdicts = [
        {"p_photo": np.nan, "predicted": "", "error": result.reason}
        if isinstance(result, ImageLoadError)
        else {"p_photo": result.p_photo, "predicted": result.subtype, "error": ""}
        for _, result in predict_pages(classifier, pages, batch_size, max_pixels, quiet)
    ]
    frame = pd.concat([labels.reset_index(drop=True), pd.DataFrame(verdicts)], axis=1)
    return frame, classifier.calibration.threshold


def assess(
    predictions: pd.DataFrame, threshold: float, rounds: int = BOOTSTRAP_ROUNDS
) -> dict[str, object]:
    """The numbers of `describe` from `predict_labelled`'s rows (those with an error are
    counted, and left out): each measure as {"value", "ci95"}, or None where the labels cannot
    tell it; and the confusion table {label: {predicted: count}}."""
    scored = predictions[predictions["error"] == ""]
    truth = scored["label"].map(LABELS.index).to_numpy(int)
    predicted = scored["predicted"].map(LABELS.index).to_numpy(int)
    p_photo = scored["p_photo"].to_numpy(np.float64)
    result: dict[str, object] = {
        "images": len(scored),
        "unreadable": len(predictions) - len(scored),
        "threshold": threshold,
        "bootstrap_rounds": rounds,
    }
    defined = {
        "accuracy": len(truth) > 0,
        "photo_recall": (truth == PHOTO).any(),
        "photo_precision": (predicted == PHOTO).any(),
        "paintings_kept_out": (truth == PAINTING).any(),
        "roc_auc": (truth == PHOTO).any() and (truth != PHOTO).any(),
        "subtype_accuracy": (truth != PHOTO).any(),
    }

    def measured(rows: np.ndarray) -> dict[str, float]:
        labels, calls = truth[rows], predicted[rows]
        binary = binary_metrics(labels, p_photo[rows], threshold)
        others = labels != PHOTO
        subtype_hits = calls[others] == labels[others]
        values = {
            "accuracy": binary["accuracy"],
            # A resample without photos, or without a photo call, has no recall or precision
            # (binary_metrics would say 0 and 1).
            "photo_recall": binary["recall"] if (labels == PHOTO).any() else np.nan,
            "photo_precision": binary["precision"] if (calls == PHOTO).any() else np.nan,
            "paintings_kept_out": 1.0 - binary["painting_as_photo"],
            "roc_auc": binary["roc_auc"],
            "subtype_accuracy": subtype_hits.mean() if others.any() else np.nan,
        }
        return {name: value for name, value in values.items() if defined[name]}

    intervals = bootstrap(measured, len(truth), rounds) if len(truth) else {}
    for name, _, _ in MEASURES:
        if value := intervals.get(name):
            result[name] = {"value": value[0], "ci95": [_number(bound) for bound in value[1:]]}
        else:
            result[name] = None
    counts = np.zeros((len(LABELS), len(LABELS)), int)
    np.add.at(counts, (truth, predicted), 1)
    result["confusion"] = {
        label: dict(zip(LABELS, map(int, row), strict=True))
        for label, row in zip(LABELS, counts, strict=True)
    }
    return result


def _number(value: float) -> float | None:
    """None for NaN (JSON has no NaN): a bound no resample could measure."""
    return None if np.isnan(value) else float(value)


def _shown(measure: dict) -> str:
    """'0.9375 [0.8125, 1.0000]', the value alone where the interval is a point or unknown."""
    if None in measure["ci95"]:
        return f"{measure['value']:.4f}"
    return format_interval([measure["value"], *measure["ci95"]])


def describe(result: dict[str, object]) -> str:
    """`assess`'s numbers as the short table `scancap evaluate classifier` prints."""
    images, unreadable = result["images"], result["unreadable"]
    left_out = f" ({unreadable} unreadable, left out)" if unreadable else ""
    lines = [
        f"{'images':<26}{images}{left_out}",
        f"{'photo from':<26}p(photo) >= {result['threshold']:.4f}",
    ]
    if not images:
        return "\n".join([*lines, "no labelled image could be read: nothing to measure"])
    for name, title, why_missing in MEASURES:
        measure = result[name]
        lines.append(f"{title:<26}{_shown(measure) if measure else why_missing}")
    lines.append(f"[95% bootstrap intervals, {result['bootstrap_rounds']:,} resamples]")
    return "\n".join([*lines, "", *confusion_lines(result["confusion"])])


def confusion_lines(confusion: dict[str, dict[str, int]]) -> list[str]:
    """The confusion table as text: a row per label present, a column per class called."""
    corner = "label \\ called"
    rows = [[corner, *LABELS]] + [
        [label, *map(str, confusion[label].values())]
        for label in LABELS
        if sum(confusion[label].values())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        row[0].ljust(widths[0])
        + "".join(cell.rjust(w + 2) for cell, w in zip(row[1:], widths[1:], strict=True))
        for row in rows
    ]
