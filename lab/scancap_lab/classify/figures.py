"""Figures of the classification report and notebook (matplotlib only, no logic of their own)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyBboxPatch
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from scancap.classify.data import LABELS, PHOTO

CURVE_METRICS = (
    ("loss", "total loss"),
    ("photo_accuracy", "photo accuracy (threshold 0.5)"),
    ("subtype_accuracy", "subtype accuracy"),
)


def architecture(stages: Sequence[tuple[str, str, bool]], title: str) -> plt.Figure:
    """Stages as boxes from input to outputs: (name, details, trainable); frozen ones are grey."""
    figure, axis = plt.subplots(figsize=(5.6, 0.72 * len(stages) + 0.6))
    axis.set_xlim(0, 1)
    axis.set_ylim(-len(stages) + 0.3, 1)
    axis.axis("off")
    for i, (name, details, trainable) in enumerate(stages):
        colour = "#cde4f7" if trainable else "#e6e6e6"
        box = FancyBboxPatch(
            (0.05, -i - 0.25), 0.9, 0.55, boxstyle="round,pad=0.02", fc=colour, ec="#555555"
        )
        axis.add_patch(box)
        axis.text(0.5, -i + 0.09, name, ha="center", va="center", fontsize=9, weight="bold")
        axis.text(0.5, -i - 0.11, details, ha="center", va="center", fontsize=8)
        if i:
            axis.annotate(
                "", (0.5, -i + 0.33), (0.5, -i + 0.73), arrowprops={"arrowstyle": "->", "lw": 1}
            )
    axis.set_title(title + "  (grey: frozen, blue: trained)", fontsize=10)
    figure.tight_layout()
    return figure


def training_curves(histories: dict[str, dict[str, list[float]]]) -> plt.Figure:
    """Train (solid) and val (dashed) loss and accuracies per epoch, one colour per run."""
    figure, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(15, 4))
    for (name, history), colour in zip(histories.items(), plt.cm.tab10.colors, strict=False):
        for axis, (key, _) in zip(axes, CURVE_METRICS, strict=True):
            epochs = np.arange(1, len(history[key]) + 1)
            axis.plot(epochs, history[key], color=colour, label=f"{name} train")
            axis.plot(epochs, history[f"val_{key}"], color=colour, ls="--", label=f"{name} val")
    for axis, (key, title) in zip(axes, CURVE_METRICS, strict=True):
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if key == "loss":
            axis.set_yscale("log")
    axes[0].legend(fontsize=7, ncol=2)
    figure.tight_layout()
    return figure


def roc_pr(sets: dict[str, tuple[np.ndarray, np.ndarray]], threshold: float) -> plt.Figure:
    """ROC and precision-recall curves of p(photo); the chosen threshold is marked."""
    figure, (roc_axis, pr_axis) = plt.subplots(1, 2, figsize=(11, 4.3))
    for name, (labels, p_photo) in sets.items():
        truth = labels == PHOTO
        fpr, tpr, _ = roc_curve(truth, p_photo)
        roc_axis.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(truth, p_photo)
        pr_axis.plot(recall, precision, label=name)
        called = p_photo >= threshold
        pr_axis.plot(
            (called & truth).sum() / truth.sum(),
            (called & truth).sum() / max(called.sum(), 1),
            "o",
            color=pr_axis.lines[-1].get_color(),
        )
    roc_axis.set(xscale="log", xlim=(1e-3, 1), xlabel="false-positive rate (log)", ylabel="recall")
    roc_axis.set_title("ROC (non-photos called photos vs photos found)")
    pr_axis.set(xlabel="recall on photo", ylabel="precision on photo", ylim=(0.9, 1.002))
    pr_axis.axhline(0.99, color="grey", ls=":", lw=1)
    pr_axis.set_title(f"precision-recall; dots: threshold {threshold:.3f}")
    for axis in (roc_axis, pr_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def confusions(labels: np.ndarray, is_photo: np.ndarray, subtype: np.ndarray) -> plt.Figure:
    """Binary (decision) and 5-class (raw subtype argmax) confusion matrices, in counts."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), width_ratios=(1, 1.6))
    binary = confusion_matrix(labels == PHOTO, is_photo, labels=[True, False])
    _matrix(left, binary, ["photo", "not photo"], "photo or not (at the threshold)")
    five = confusion_matrix(labels, subtype, labels=range(len(LABELS)))
    _matrix(right, five, list(LABELS), "subtype (argmax of 5)")
    figure.tight_layout()
    return figure


def _matrix(axis: plt.Axes, counts: np.ndarray, names: list[str], title: str) -> None:
    axis.imshow(np.log1p(counts), cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        colour = "white" if counts[i, j] > counts.max() / 3 else "black"
        axis.text(j, i, str(value), ha="center", va="center", color=colour)
    axis.set_xticks(range(len(names)), names, rotation=30)
    axis.set_yticks(range(len(names)), names)
    axis.set(xlabel="predicted", ylabel="true", title=title)


def reliability(
    labels: np.ndarray, raw: np.ndarray, calibrated: np.ndarray, bins: int = 10
) -> plt.Figure:
    """Observed photo frequency against predicted p(photo), before and after scaling."""
    figure, axis = plt.subplots(figsize=(5, 4.3))
    truth = labels == PHOTO
    edges = np.linspace(0, 1, bins + 1)
    for name, p in (("raw sigmoid", raw), ("temperature-scaled", calibrated)):
        which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
        filled = [b for b in range(bins) if (which == b).any()]
        axis.plot(
            [p[which == b].mean() for b in filled],
            [truth[which == b].mean() for b in filled],
            "o-",
            label=name,
        )
    axis.plot([0, 1], [0, 1], color="grey", ls=":")
    axis.set(xlabel="predicted p(photo)", ylabel="fraction of photos", title="calibration (val)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def image_grid(
    images: Sequence[np.ndarray], titles: Sequence[str], columns: int = 6, size: float = 2.3
) -> plt.Figure:
    """Thumbnails with two-line titles (the worst errors, the samples)."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes = plt.subplots(
        rows, columns, figsize=(size * columns, (size + 0.4) * rows), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, title in zip(axes.flat, images, titles, strict=False):
        axis.imshow(image)
        axis.set_title(title, fontsize=7)
    figure.tight_layout()
    return figure


def per_source(table: pd.DataFrame) -> plt.Figure:
    """Binary accuracy per source (test), with the error count on each bar."""
    figure, axis = plt.subplots(figsize=(10, 4))
    axis.bar(table.index, table["accuracy"], color="#4c72b0")
    for i, (accuracy, errors) in enumerate(zip(table["accuracy"], table["errors"], strict=True)):
        axis.text(i, accuracy + 0.002, str(errors), ha="center", fontsize=8)
    axis.set_ylim(max(0.0, table["accuracy"].min() - 0.05), 1.01)
    axis.set_ylabel("binary accuracy (number of errors on the bars)")
    axis.tick_params(axis="x", rotation=60)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def loso_vs_split(table: pd.DataFrame) -> plt.Figure:
    """Per source: accuracy as a held-out source (LOSO) against accuracy on its own test images
    (in distribution), sorted by LOSO accuracy; the gap is what a random split hides."""
    table = table.sort_values("LOSO accuracy")
    figure, axis = plt.subplots(figsize=(8, 0.26 * len(table) + 1.2))
    rows = np.arange(len(table))
    axis.hlines(rows, table["LOSO accuracy"], table["test accuracy"], color="#bbbbbb")
    axis.plot(table["test accuracy"], rows, "o", color="#4c72b0", label="own test images")
    axis.plot(table["LOSO accuracy"], rows, "o", color="#dd8452", label="held out (LOSO)")
    axis.set_yticks(rows, [f"{label}/{source}" for label, source in table.index], fontsize=7)
    axis.set_xlabel("share decided right (photo sources: called photo; others: kept out)")
    axis.axvline(0.9, color="#999999", linestyle=":", linewidth=1)
    axis.legend(loc="lower right", fontsize=8)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return figure
