"""Matplotlib figures shared by the restoration benchmark and notebook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def show_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    columns: int | None = None,
    size: float = 3.2,
    crop: tuple[slice, slice] | None = None,
) -> plt.Figure:
    """A grid of images with titles; `crop` zooms every image on the same region."""
    columns = columns or len(images)
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, title in zip(axes.flat, images, titles, strict=False):
        shown = image[crop] if crop else image
        axis.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=255)
        axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def psnr_bars(table: pd.DataFrame, title: str) -> plt.Figure:
    """Grouped bars: degradations on x, one bar per method (a pivot from benchmark.pivot)."""
    figure, axis = plt.subplots(figsize=(12, 4))
    table.plot.bar(ax=axis, width=0.85)
    axis.set_ylabel("PSNR (dB)")
    axis.set_ylim(max(0.0, np.nanmin(table.to_numpy()) - 3), None)
    axis.set_title(title)
    axis.legend(ncol=4, fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def strength_curves(sweep: pd.DataFrame, parameter: str, title: str) -> plt.Figure:
    """PSNR and SSIM against a filter strength (one line per degradation)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, group in sweep.groupby("degradation", sort=False):
        left.plot(group[parameter], group["psnr"], marker="o", label=name)
        right.plot(group[parameter], group["ssim"], marker="o", label=name)
    for axis, metric in ((left, "PSNR (dB)"), (right, "SSIM")):
        axis.set_xlabel(parameter)
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save(figure: plt.Figure, path: Path) -> Path:
    """Write a PNG (creating the folder) and release the figure's memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
