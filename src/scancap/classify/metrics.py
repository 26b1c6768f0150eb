"""Metrics for the photo-or-not decision and the subtype, with seeded bootstrap intervals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from scancap.classify.data import LABELS, PHOTO

PAINTING = LABELS.index("painting")
BOOTSTRAP_SEED = 42
BOOTSTRAP_ROUNDS = 1000


def binary_metrics(labels: np.ndarray, p_photo: np.ndarray, threshold: float) -> dict[str, float]:
    """Decision metrics at `threshold` and ranking metrics (threshold-free) for photo vs not.

    Plain NumPy, equal to scikit-learn's scores (same zero-division conventions): a bootstrap
    calls this a thousand times per split, where scikit-learn's input checks dominate.
    """
    labels, p_photo = np.asarray(labels), np.asarray(p_photo, np.float64)
    truth = labels == PHOTO
    called = p_photo >= threshold
    hits, positives, calls = int((truth & called).sum()), int(truth.sum()), int(called.sum())
    both_classes = 0 < positives < len(truth)
    paintings = labels == PAINTING
    return {
        "accuracy": float((truth == called).mean()),
        "precision": hits / calls if calls else 1.0,
        "recall": hits / positives if positives else 0.0,
        "f1": 2 * hits / (positives + calls) if positives + calls else 0.0,
        "roc_auc": roc_auc(truth, p_photo) if both_classes else np.nan,
        "average_precision": average_precision(truth, p_photo) if both_classes else np.nan,
        "painting_as_photo": called[paintings].mean() if paintings.any() else np.nan,
        "non_photo_as_photo": called[~truth].mean() if (~truth).any() else np.nan,
    }


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half)."""
    positives = int(truth.sum())
    negatives = len(truth) - positives
    rank_sum = rankdata(scores)[truth].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(truth: np.ndarray, scores: np.ndarray) -> float:
    """Σ (Rₖ - Rₖ₋₁) Pₖ over the distinct scores, highest first (scikit-learn's definition)."""
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], np.cumsum(truth[order])
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    true_positives = hits[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall_steps = np.diff(np.r_[0, true_positives]) / true_positives[-1]
    return float(np.sum(recall_steps * precision))


def subtype_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """5-class accuracy and macro F1 (over all five labels, 0 where a label is never seen
    nor predicted) of the raw subtype argmax."""
    labels = np.asarray(labels)
    predicted = np.asarray(probabilities).argmax(axis=1)
    classes = np.arange(len(LABELS))[:, None]
    hits = ((labels == predicted) & (labels == classes)).sum(axis=1)
    sizes = (labels == classes).sum(axis=1) + (predicted == classes).sum(axis=1)
    f1 = np.divide(2 * hits, sizes, out=np.zeros(len(LABELS)), where=sizes > 0)
    return {
        "subtype_accuracy": float((labels == predicted).mean()),
        "subtype_macro_f1": float(f1.mean()),
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
