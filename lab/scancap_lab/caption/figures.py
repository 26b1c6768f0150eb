"""Figures of the captioning report and notebook (matplotlib only, no logic of their own)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyBboxPatch

from scancap.caption.detector import Detection
from scancap.caption.model import Caption


def caption_lengths(lengths: np.ndarray, max_len: int) -> plt.Figure:
    """Histogram of words per caption, with the cut-off chosen for the decoder."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.hist(lengths, bins=np.arange(0.5, lengths.max() + 1.5), color="#4c72b0")
    axis.axvline(max_len + 0.5, color="#c44e52", ls="--", label=f"max_len = {max_len}")
    kept = (lengths <= max_len).mean()
    axis.set_title(f"words per training caption ({kept:.1%} kept at max_len)")
    axis.set_xlabel("words")
    axis.set_ylabel("captions")
    axis.legend()
    figure.tight_layout()
    return figure


def word_frequencies(counts: pd.Series, min_count: int) -> plt.Figure:
    """Rank-frequency (Zipf) plot of training words, the min-count cut-off, token coverage."""
    counts = counts.sort_values(ascending=False)
    ranks = np.arange(1, len(counts) + 1)
    kept = counts >= min_count
    coverage = counts[kept].sum() / counts.sum()
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.loglog(ranks[kept], counts[kept], color="#4c72b0", label=f"kept: {kept.sum():,} words")
    axis.loglog(ranks[~kept], counts[~kept], color="#aaaaaa", label=f"<unk>: {(~kept).sum():,}")
    axis.axhline(min_count, color="#c44e52", ls="--", lw=1, label=f"min count {min_count}")
    axis.set_title(f"training words by frequency (kept words cover {coverage:.1%} of tokens)")
    axis.set_xlabel("rank")
    axis.set_ylabel("occurrences")
    axis.legend()
    figure.tight_layout()
    return figure


# (label, details, x, y, colour): the decoder at step t, drawn as boxes.
_BOXES = {
    "image": ("image 224x224", "uint8 RGB -> [0, 1]", 0.14, 0.92, "#e6e6e6"),
    "backbone": ("MobileNetV2 (frozen)", "7x7x1280 grid = 49 regions", 0.14, 0.74, "#e6e6e6"),
    "project": ("projection", "Dense 1280->512, ReLU", 0.14, 0.56, "#cde4f7"),
    "init": ("initial state", "h0 = tanh(W mean(regions))", 0.14, 0.34, "#cde4f7"),
    "attention": (
        "additive attention",
        "alpha = softmax(v.tanh(Wk f + Wq h))",
        0.5,
        0.56,
        "#cde4f7",
    ),
    "gate": ("gate", "z = sigmoid(Wb h) * sum alpha f", 0.5, 0.38, "#cde4f7"),
    "word": ("previous word", "embedding 256 (dropout)", 0.86, 0.56, "#cde4f7"),
    "gru": ("GRU 512", "h_t = GRU([E y, z], h_{t-1})", 0.5, 0.18, "#cde4f7"),
    "readout": ("deep readout", "softmax(Wo drop(E y + Wh h + Wz z))", 0.86, 0.18, "#cde4f7"),
}
_ARROWS = [
    ("image", "backbone"),
    ("backbone", "project"),
    ("project", "attention"),
    ("project", "init"),
    ("attention", "gate"),
    ("gate", "gru"),
    ("word", "gru"),
    ("gru", "readout"),
    ("word", "readout"),
    ("init", "gru"),
]


def architecture() -> plt.Figure:
    """The captioner: frozen encoder (grey) and the trained decoder (blue), one step t."""
    figure, axis = plt.subplots(figsize=(10, 5.5))
    axis.set_xlim(0, 1)
    axis.set_ylim(0.05, 1.0)
    axis.axis("off")
    for label, details, x, y, colour in _BOXES.values():
        axis.add_patch(
            FancyBboxPatch(
                (x - 0.13, y - 0.055), 0.26, 0.11, boxstyle="round,pad=0.01", fc=colour, ec="#555"
            )
        )
        axis.text(x, y + 0.02, label, ha="center", va="center", fontsize=9, weight="bold")
        axis.text(x, y - 0.025, details, ha="center", va="center", fontsize=7.5)
    for source, target in _ARROWS:
        (_, _, x0, y0, _), (_, _, x1, y1, _) = _BOXES[source], _BOXES[target]
        dx, dy = 0.13 * np.sign(x1 - x0) * (y0 == y1), 0.055 * np.sign(y1 - y0)
        axis.annotate(
            "",
            (x1 - dx, y1 - dy),
            (x0 + dx, y0 + dy),
            arrowprops={"arrowstyle": "->", "lw": 1, "color": "#333"},
        )
    _, _, x, y, _ = _BOXES["gru"]
    axis.annotate(
        "h_t: next step's query",
        (0.5, 0.5),
        (x + 0.2, y + 0.1),
        fontsize=8,
        color="#c44e52",
        arrowprops={"arrowstyle": "->", "color": "#c44e52", "connectionstyle": "arc3,rad=0.4"},
    )
    axis.set_title("Show, Attend and Tell captioner (grey: frozen, blue: trained)", fontsize=11)
    figure.tight_layout()
    return figure


def _mark_kept_epoch(figure: plt.Figure, axes, best: int, xlabel: str) -> plt.Figure:
    """Highlight the epoch whose weights were kept on every panel; grid, legend, layout."""
    for axis in axes:
        axis.axvline(best, color="#c44e52", alpha=0.4, lw=3, label=f"kept: epoch {best}")
        axis.set_xlabel(xlabel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def training_curves(history: pd.DataFrame) -> plt.Figure:
    """Train vs dev objective and cross-entropy, dev greedy BLEU-4/CIDEr-D, best epoch marked."""
    epochs = history["epoch"].to_numpy() + 1
    best = epochs[history["val_cider"].to_numpy().argmax()]
    figure, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for axis, key, title in (
        (axes[0], "loss", "objective (smoothed CE + attention regulariser)"),
        (axes[1], "cross_entropy", "token cross-entropy (nats)"),
    ):
        axis.plot(epochs, history[key], "o-", label="train (dropout on)")
        axis.plot(epochs, history[f"val_{key}"], "o--", label="dev")
        axis.set_title(title)
    axes[2].plot(epochs, history["val_cider"], "o-", label="CIDEr-D")
    axes[2].plot(epochs, history["val_bleu4"], "o-", label="BLEU-4")
    axes[2].set_title("dev, greedy decoding")
    rates = history["learning_rate"].to_numpy()
    for epoch in np.flatnonzero(rates[1:] < rates[:-1]) + 1:  # first epoch at the halved rate
        axes[2].axvline(epoch + 0.5, color="#999", ls=":", lw=1)
    return _mark_kept_epoch(figure, axes, best, "epoch")


def scst_curves(history: pd.DataFrame) -> plt.Figure:
    """Self-critical epochs: mean sampled reward on train, dev beam-3 CIDEr-D and BLEU-4."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(history["epoch"], history["train_reward"], "o-")
    axes[0].set_title("train: mean CIDEr-D of the sampled captions")
    axes[1].plot(history["epoch"], history["dev_CIDEr-D"], "o-", label="CIDEr-D")
    axes[1].plot(history["epoch"], history["dev_BLEU-4"], "o-", label="BLEU-4")
    axes[1].set_title("dev, beam 3 (epoch 0: the cross-entropy model)")
    best = history["epoch"].to_numpy()[history["dev_CIDEr-D"].to_numpy().argmax()]
    return _mark_kept_epoch(figure, axes, best, "self-critical epoch")


def _overlay(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The image darkened where a 7x7 attention map is low (upsampled smoothly)."""
    height, width = image.shape[:2]
    heat = cv2.resize(weights.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    heat = np.clip(heat / max(float(heat.max()), 1e-6), 0, 1)
    return (image * (0.25 + 0.75 * heat[..., None])).astype(np.uint8)


def attention_maps(
    examples: Sequence[tuple[np.ndarray, Caption]], max_words: int = 9
) -> plt.Figure:
    """One row per image: the image with its caption, then where each word looked."""
    columns = max_words + 1
    figure, axes = plt.subplots(
        len(examples), columns, figsize=(1.6 * columns, 1.85 * len(examples)), squeeze=False
    )
    for row, (image, caption) in zip(axes, examples, strict=True):
        for axis in row:
            axis.axis("off")
        row[0].imshow(image)
        row[0].set_title("\n".join(textwrap.wrap(caption.text, 24)), fontsize=7, loc="left")
        for axis, word, weights in zip(row[1:], caption.words, caption.attention, strict=False):
            axis.imshow(_overlay(image, weights))
            axis.set_title(word, fontsize=9)
    figure.tight_layout()
    return figure


def caption_grid(
    images: Sequence[np.ndarray], texts: Sequence[str], columns: int = 4
) -> plt.Figure:
    """Images with a (wrapped, multi-line) text under each: captions, references, scores."""
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.2 * columns, 5.4 * rows),
        squeeze=False,
        gridspec_kw={"hspace": 0.5},
    )
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, text in zip(axes.flat, images, texts, strict=False):
        axis.imshow(image)
        wrapped = "\n".join(
            "\n".join(textwrap.wrap(line, 46, subsequent_indent="   ")) for line in text.split("\n")
        )
        axis.text(0, 1.02 * image.shape[0], wrapped, fontsize=7.5, va="top", family="monospace")
    return figure


def detections(
    images: Sequence[np.ndarray],
    found: Sequence[Sequence[Detection]],
    titles: Sequence[str],
    columns: int = 3,
) -> plt.Figure:
    """Photos with the COCO detector's boxes and scores drawn over them, a title under each."""
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.2 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, objects, title in zip(axes.flat, images, found, titles, strict=False):
        height, width = image.shape[:2]
        axis.imshow(image)
        for item in objects:
            x0, y0, x1, y1 = item.box
            box = plt.Rectangle((x0 * width, y0 * height), (x1 - x0) * width,
                                (y1 - y0) * height, fill=False, color="#f60", lw=2)  # fmt: skip
            axis.add_patch(box)
            axis.text(x0 * width, y0 * height, f"{item.label} {item.score:.2f}", color="white",
                      fontsize=8, va="top", backgroundcolor="#f60")  # fmt: skip
        axis.set_title("\n".join(textwrap.wrap(title, 44)), fontsize=9)
    figure.tight_layout()
    return figure
