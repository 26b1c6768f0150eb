"""Metrics for the photo-or-not decision and the subtype, with seeded bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from scancap.classify.data import LABELS, PHOTO

PAINTING = LABELS.index("painting")
BOOTSTRAP_SEED = 42
BOOTSTRAP_ROUNDS = 1000


def binary_metrics(labels: np.ndarray, p_photo: np.ndarray, threshold: float) -> dict[str, float]:
    """Decision metrics at `threshold` and ranking metrics (threshold-free) for photo vs not."""
    labels = np.asarray(labels)
    truth = labels == PHOTO
    called = np.asarray(p_photo) >= threshold
    both_classes = 0 < truth.sum() < len(truth)
    paintings = labels == PAINTING
    return {
        "accuracy": accuracy_score(truth, called),
        "precision": precision_score(truth, called, zero_division=1.0),
        "recall": recall_score(truth, called, zero_division=0.0),
        "f1": f1_score(truth, called, zero_division=0.0),
        "roc_auc": roc_auc_score(truth, p_photo) if both_classes else np.nan,
        "average_precision": average_precision_score(truth, p_photo) if both_classes else np.nan,
        "painting_as_photo": called[paintings].mean() if paintings.any() else np.nan,
        "non_photo_as_photo": called[~truth].mean() if (~truth).any() else np.nan,
    }


def subtype_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """5-class accuracy and macro F1 of the raw subtype argmax."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    return {
        "subtype_accuracy": accuracy_score(labels, predicted),
        "subtype_macro_f1": f1_score(
            labels, predicted, labels=range(len(LABELS)), average="macro", zero_division=0.0
        ),
    }


def all_metrics(
    labels: np.ndarray, p_photo: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, float]:
    return binary_metrics(labels, p_photo, threshold) | subtype_metrics(labels, probabilities)


def bootstrap(
    metric: Callable[[np.ndarray], dict[str, float]],
    size: int,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, tuple[float, float, float]]:
    """(point estimate, 2.5%, 97.5%) of every metric; `metric` maps row indices to metrics.

    Resampling rows with replacement measures how much the numbers would move on another test
    set of the same size from the same sources (not on other sources).
    """
    rng = np.random.default_rng(seed)
    point = metric(np.arange(size))
    draws = [metric(rng.integers(0, size, size)) for _ in range(rounds)]
    return {
        name: (float(value), *map(float, np.nanpercentile([d[name] for d in draws], [2.5, 97.5])))
        for name, value in point.items()
    }


def bootstrap_metrics(
    labels: np.ndarray,
    p_photo: np.ndarray,
    probabilities: np.ndarray,
    threshold: float,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> dict[str, tuple[float, float, float]]:
    """all_metrics with bootstrap 95% intervals."""
    labels, p_photo, probabilities = map(np.asarray, (labels, p_photo, probabilities))
    return bootstrap(
        lambda rows: all_metrics(labels[rows], p_photo[rows], probabilities[rows], threshold),
        len(labels),
        rounds,
    )


def format_interval(values: list[float] | tuple[float, float, float], digits: int = 4) -> str:
    """'0.9912 [0.9850, 0.9960]', or the value alone when the interval is a point."""
    value, low, high = values
    if low == high == value:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown_table(frame: pd.DataFrame, index: bool = True) -> str:
    """A GitHub-flavoured table (pandas' to_markdown needs tabulate, not a dependency)."""
    frame = frame.reset_index() if index else frame
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
