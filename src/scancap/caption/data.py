"""Flickr8k for captioning: captions, splits, the backbone feature cache and the tf.data streams.

The frozen backbone runs once per image: its 7x7x1280 grids are cached as a float16 memory map
(7,000 x 49 x 1280 x 2 B = 0.9 GB) under ``cache/flickr8k/``, and training streams batches out
of it, so float32 features of the whole set never sit in memory. Batches group captions of
similar length, which keeps the padding, and so the wasted decoder steps, small.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from scancap import paths
from scancap.caption.model import (
    FEATURE_CHANNELS,
    GRID_CELLS,
    Vocabulary,
    extract_grids,
    shared_backbone,
)
from scancap.io import load_image
from scancap.paths import data_dir

FLICKR = Path("flickr8k")
POOL_BATCHES = 50  # batches of similar caption lengths are cut from pools this many batches big
SPLITS = ("train", "dev")


# --- captions and splits --------------------------------------------------------------------------


def load_split(split: str, data: Path | None = None, limit: int | None = None) -> list[str]:
    """Image file names of a split in the order of its splits/<split>.txt (first `limit`)."""
    names = ((data or data_dir()) / FLICKR / "splits" / f"{split}.txt").read_text().split()
    return names[:limit] if limit else names


def load_captions(data: Path | None = None) -> pd.DataFrame:
    """captions.tsv: one row per caption (image, split, caption_id, caption), raw text."""
    path = (data or data_dir()) / FLICKR / "captions.tsv"
    return pd.read_csv(path, sep="\t", keep_default_na=False, quoting=3)


def references(captions: pd.DataFrame, images: list[str]) -> dict[str, list[str]]:
    """Raw reference captions of each image, for the metrics."""
    grouped = captions.groupby("image")["caption"].apply(list)
    return {image: grouped[image] for image in images}


# --- the feature cache ----------------------------------------------------------------------------


@dataclass
class FeatureCache:
    """Backbone grids of a list of images, memory-mapped: (images, 49, 1280) float16."""

    images: list[str]
    grids: np.ndarray

    def rows(self, names: list[str]) -> np.ndarray:
        position = {name: i for i, name in enumerate(self.images)}
        return np.array([position[name] for name in names], dtype=np.int64)


def _cache_key(images: list[str]) -> str:
    return hashlib.sha256("\n".join(images).encode()).hexdigest()[:16]


def build_feature_cache(
    images: list[str],
    cache_dir: Path | None = None,
    data: Path | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> FeatureCache:
    """Compute (or resume, or reuse) the grids of `images` (file names in flickr8k/images/).

    The folder is named after a hash of the image list, so another list never reads stale rows;
    `done.json` is rewritten after every batch, so an interrupted run resumes where it stopped.
    """
    data = data or data_dir()
    folder = (cache_dir or paths.cache_dir()) / "flickr8k" / _cache_key(images)
    folder.mkdir(parents=True, exist_ok=True)
    done_path = folder / "done.json"
    done = json.loads(done_path.read_text())["rows"] if done_path.exists() else 0
    if done < len(images):
        grids = np.lib.format.open_memmap(
            folder / "grids.npy",
            "r+" if done else "w+",
            np.float16,
            (len(images), GRID_CELLS, FEATURE_CHANNELS),
        )
        (folder / "images.txt").write_text("\n".join(images) + "\n")
        backbone, _ = shared_backbone()  # the grid model that captioning reads
        bar = tqdm(
            total=len(images), initial=done, desc="features", unit="img", disable=not progress
        )
        while done < len(images):
            chunk = images[done : done + batch_size]
            pixels = [load_image(data / FLICKR / "images" / name) for name in chunk]
            grids[done : done + len(chunk)] = next(extract_grids(backbone, pixels, batch_size))
            grids.flush()
            done += len(chunk)
            done_path.write_text(json.dumps({"rows": done}))
            bar.update(len(chunk))
        bar.close()
        del grids  # reopened read-only below
    return FeatureCache(images, np.load(folder / "grids.npy", mmap_mode="r"))


# --- training pairs and the tf.data streams -------------------------------------------------------


@dataclass
class CaptionPairs:
    """Every (image row, encoded caption) pair of a split; captions longer than max_len dropped."""

    rows: np.ndarray  # (pairs,) row of the image in the feature cache
    tokens: np.ndarray  # (pairs, max_len + 1) int32: <start> caption <end>, 0-padded
    lengths: np.ndarray  # (pairs,) tokens including <start> and <end>


def caption_pairs(
    captions: pd.DataFrame, images: list[str], cache: FeatureCache, vocab: Vocabulary
) -> CaptionPairs:
    table = captions[captions["image"].isin(set(images))]
    encoded = [vocab.encode(text) for text in table["caption"]]
    keep = np.array([len(tokens) <= vocab.max_len + 1 for tokens in encoded])
    kept = [tokens for tokens, ok in zip(encoded, keep, strict=True) if ok]
    padded = np.zeros((len(kept), vocab.max_len + 1), np.int32)
    for i, tokens in enumerate(kept):
        padded[i, : len(tokens)] = tokens
    rows = cache.rows(table["image"].to_list())[keep]
    return CaptionPairs(rows, padded, np.array([len(t) for t in kept], np.int32))


def _length_sorted_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffled batches of pair indices, each made of captions of similar length.

    Pairs are shuffled, sorted by length inside pools of POOL_BATCHES batches, cut into batches,
    and the batches shuffled: every epoch sees new batches, with little padding in each.
    """
    order = rng.permutation(len(lengths))
    pool = batch_size * POOL_BATCHES
    batches = []
    for first in range(0, len(order), pool):
        chunk = order[first : first + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def flip_grids(grids: np.ndarray) -> np.ndarray:
    """Mirror (n, 49, C) grids left-right, as the backbone would see the mirrored image."""
    n, cells, channels = grids.shape
    side = int(round(cells**0.5))
    return grids.reshape(n, side, side, channels)[:, :, ::-1].reshape(n, cells, channels)


def caption_dataset(
    pairs: CaptionPairs,
    grids: np.ndarray,
    vocab: Vocabulary,
    batch_size: int,
    shuffle: bool,
    flip: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """((features, input tokens), target tokens) batches, read from the memory map as needed.

    With `flip`, half the batches' grids are mirrored and "left"/"right" swapped in their
    captions. Batches are trimmed to their longest caption.
    """
    rng = np.random.default_rng(seed)
    swap = vocab.left_right_swap()
    count = len(_length_sorted_batches(pairs.lengths, batch_size, np.random.default_rng(seed)))

    def generate() -> Iterator[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]:
        order_rng = rng if shuffle else np.random.default_rng(seed)  # evaluation: same batches
        for batch in _length_sorted_batches(pairs.lengths, batch_size, order_rng):
            rows = pairs.rows[batch]
            unique, inverse = np.unique(rows, return_inverse=True)  # memmaps read sorted rows
            features = np.asarray(grids[unique])[inverse]
            tokens = pairs.tokens[batch, : pairs.lengths[batch].max()]
            if flip and rng.random() < 0.5:
                features, tokens = flip_grids(features), swap[tokens]
            yield (features, tokens[:, :-1]), tokens[:, 1:]

    signature = (
        (
            tf.TensorSpec((None, GRID_CELLS, grids.shape[-1]), tf.float16),
            tf.TensorSpec((None, None), tf.int32),
        ),
        tf.TensorSpec((None, None), tf.int32),
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(2)
