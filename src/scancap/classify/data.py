"""The doctype data set: manifest, persisted split, scan-like augmentation and feature caches.

Training never reads features that were not computed from the persisted split, and every
augmented view is seeded by (image, view), so a rerun of `scancap train classifier` sees the
same pixels. Features are cached as float16 memory maps under ``cache/``: the frozen backbone
runs once per view, and every head or top-block experiment afterwards reads the cache.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm import tqdm

from scancap import paths
from scancap.backbones.efficientnet_lite import FEATURE_LAYER, TRUNK_LAYER, load_lite0
from scancap.backbones.inputs import to_model_input
from scancap.io import load_image
from scancap.paths import data_dir

LABELS = ("photo", "painting", "schematic", "text", "sketch")
PHOTO = LABELS.index("photo")
SPLITS = ("train", "val", "test")
SPLIT_SEED = 42
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
MIN_STRATUM = 10  # smaller (label, source) strata cannot be split 70/15/15 with stratification
MANIFEST = Path("doctype") / "manifest.csv"
SPLIT_FILE = "split.csv"

FEATURE_BACKBONE = "efficientnet_lite0"  # part of the cache key: features of another backbone
# Lite0 layers whose per-channel mean and standard deviation the head reads besides block 10's
# (the stem, blocks 2, 4, 7 and 14: 736 values): medium cues from fine to coarse (v11,
# reports/classification_experiments.md).
TEXTURE_LAYERS = ("stem_relu", "block_2_out", "block_4_out", "block_7_out", "block_14_out")
TEXTURE_DIM = 2 * (32 + 24 + 40 + 80 + 192)
AUGMENTED_VIEWS = 3  # per training image, besides the clean view
# Views computed per split: "clean" everywhere; "gray" checks the colour shortcut on val/test.
VIEWS = {
    "train": ("clean",) + tuple(f"aug{i}" for i in range(1, AUGMENTED_VIEWS + 1)),
    "val": ("clean", "gray"),
    "test": ("clean", "gray"),
}
AUGMENTATION_VERSION = 3  # bump when augment() changes: it invalidates the feature caches


# --- manifest and split ---------------------------------------------------------------------------


def load_manifest(data: Path | None = None) -> pd.DataFrame:
    """The manifest with a `y` column (index into LABELS); paths stay relative to the data dir."""
    frame = pd.read_csv((data or data_dir()) / MANIFEST)
    unknown = set(frame["label"]) - set(LABELS)
    if unknown:
        raise ValueError(f"unknown labels in the manifest: {sorted(unknown)}")
    frame["y"] = frame["label"].map(LABELS.index)
    return frame


def split_strata(manifest: pd.DataFrame) -> pd.Series:
    """(label, source) per image; a source too small to be cut three ways (MIN_STRATUM) joins
    its label's largest source, so that its images still spread over the splits at random."""
    strata = manifest["label"] + "/" + manifest["source"]
    counts = strata.value_counts()
    largest = counts.groupby(counts.index.str.split("/").str[0]).idxmax()
    small = strata.map(counts) < MIN_STRATUM
    return strata.where(~small, manifest["label"].map(largest))


def make_split(manifest: pd.DataFrame, seed: int = SPLIT_SEED) -> pd.DataFrame:
    """Train/val/test, stratified by (label, source) so every source of at least MIN_STRATUM
    images is in every split in the same proportions."""
    strata = split_strata(manifest)
    train_share, val_share, _ = SPLIT_FRACTIONS
    train, rest = train_test_split(
        manifest.index, train_size=train_share, stratify=strata, random_state=seed
    )
    val, test = train_test_split(
        rest,
        train_size=val_share / (1 - train_share),
        stratify=strata[rest],
        random_state=seed,
    )
    split = pd.Series("", index=manifest.index)
    for name, rows in zip(SPLITS, (train, val, test), strict=True):
        split[rows] = name
    return manifest.assign(split=split)[["path", "label", "source", "split"]]


def extra_flickr8k_photos(split: pd.DataFrame, data: Path | None = None) -> pd.DataFrame:
    """The Flickr8k train photos the doctype manifest does not list, as extra training rows
    of the flickr8k source (never val or test): people and dogs in everyday scenes, the
    content the photo side has little of outside PACS."""
    data = data or data_dir()
    names = (data / "flickr8k" / "splits" / "train.txt").read_text().split()
    paths = [f"flickr8k/images/{name}" for name in names]
    new = sorted(set(paths) - set(split["path"]))
    return pd.DataFrame(
        {"path": new, "label": "photo", "source": "flickr8k", "split": "train"}
    ).assign(y=PHOTO)


def read_split(path: Path) -> pd.DataFrame:
    """A persisted split, with the `y` column added."""
    frame = pd.read_csv(path)
    return frame.assign(y=frame["label"].map(LABELS.index))


def limit_split(split: pd.DataFrame, per_label: int, seed: int = SPLIT_SEED) -> pd.DataFrame:
    """At most `per_label` images of each label in each split (smoke tests, fast notebooks)."""
    shuffled = split.sample(frac=1.0, random_state=seed)
    return shuffled.groupby(["split", "label"]).head(per_label).sort_index()


# --- augmentation ---------------------------------------------------------------------------------


def _random_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep 55-100% of the area at a jittered aspect ratio (the resize to 224 stretches it)."""
    height, width = image.shape[:2]
    area = rng.uniform(0.55, 1.0) * height * width
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))) * width / height
    crop_w = int(np.clip(round(np.sqrt(area * aspect)), 8, width))
    crop_h = int(np.clip(round(np.sqrt(area / aspect)), 8, height))
    top = rng.integers(0, height - crop_h + 1)
    left = rng.integers(0, width - crop_w + 1)
    return image[top : top + crop_h, left : left + crop_w]


def _colour_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation of a scan vary with the scanner and the paper."""
    x = image.astype(np.float32)
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * rng.uniform(0.6, 1.4)  # saturation
    x = x.mean() + (x - x.mean()) * rng.uniform(0.75, 1.25)  # contrast
    x = x * rng.uniform(0.8, 1.2)  # brightness
    return np.clip(x, 0, 255).astype(np.uint8)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Black-and-white print: many real photos are grey, like most sketches and text here."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.repeat(gray[..., None], 3, axis=2)


def _sepia(image: np.ndarray) -> np.ndarray:
    """An aged print's brown tint."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)[..., None]
    return np.clip(gray * np.array([1.07, 0.89, 0.69]) + 10, 0, 255).astype(np.uint8)


def _aged_print(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A faded, grainy, vignetted print: how a scanned old photograph (or painting) looks."""
    x = image.astype(np.float32)
    paper = rng.uniform(200, 250)
    x = paper + (x - paper) * rng.uniform(0.55, 0.9)  # faded: contrast pulled toward the paper
    height, width = x.shape[:2]
    rows, cols = np.ogrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]
    x *= (1 - rng.uniform(0.0, 0.35) * (rows**2 + cols**2) / 2)[..., None]  # vignette
    grain = rng.normal(0, rng.uniform(2, 10), (height, width, 1))  # film grain is colourless
    return np.clip(x + grain, 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A scan-like variant of a uint8 RGB image: crop, flip, colour, grey/sepia, blur, noise, JPEG.

    Each step targets a shortcut or a scanning artefact: grey and sepia (half of them also faded,
    grainy and vignetted) because real old photos are monochrome while almost every photo here is
    colour, and every class gets them so that monochrome alone says nothing; blur and low
    resolution because small sources (symbols, sketches) are upscaled; noise (up to σ=35, or a
    noisy photo is sorted as a painting and never restored) and JPEG because scans carry both.
    """
    x = _random_crop(image, rng)
    if rng.random() < 0.5:
        x = x[:, ::-1]
    x = _colour_jitter(x, rng)
    tone = rng.random()
    if tone < 0.35:
        x = to_gray(x)
    elif tone < 0.5:
        x = _sepia(x)
    if tone < 0.5 and rng.random() < 0.5:
        x = _aged_print(x, rng)
    if rng.random() < 0.2:
        scale = rng.uniform(0.35, 0.7)
        small = (max(8, round(x.shape[1] * scale)), max(8, round(x.shape[0] * scale)))
        x = cv2.resize(x, small, interpolation=cv2.INTER_AREA)
    if rng.random() < 0.25:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.5))
    if rng.random() < 0.4:  # σ log-uniform in 2-35: from fine grain to a very noisy scan
        noise = rng.normal(0, np.exp(rng.uniform(np.log(2), np.log(35))), x.shape)
        x = np.clip(x + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        x = _jpeg(x, int(rng.integers(30, 91)))
    return np.ascontiguousarray(x)


def view_of(image: np.ndarray, path: str, view: str) -> np.ndarray:
    """The named view of an image; augmented views are seeded by (path, view)."""
    if view == "clean":
        return image
    if view == "gray":
        return to_gray(image)
    rng = np.random.default_rng([SPLIT_SEED, zlib.crc32(path.encode()), zlib.crc32(view.encode())])
    return augment(image, rng)


# --- feature cache --------------------------------------------------------------------------------


def view_index(split: pd.DataFrame) -> pd.DataFrame:
    """One row per (image, view) to run through the backbone, in a fixed order."""
    rows = [
        (path, label, source, name, view)
        for name in SPLITS
        for view in VIEWS[name]
        for path, label, source in split.loc[
            split["split"] == name, ["path", "label", "source"]
        ].itertuples(index=False)
    ]
    frame = pd.DataFrame(rows, columns=["path", "label", "source", "split", "view"])
    return frame.assign(y=frame["label"].map(LABELS.index))


@keras.saving.register_keras_serializable(package="scancap")
class ChannelStats(keras.layers.Layer):
    """Per-channel mean and standard deviation over a grid's positions: texture statistics,
    as in style transfer, independent of where things are in the image."""

    def call(self, grid: keras.KerasTensor) -> keras.KerasTensor:
        mean = keras.ops.mean(grid, axis=(1, 2))
        std = keras.ops.sqrt(keras.ops.var(grid, axis=(1, 2)) + 1e-6)
        return keras.ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], 2 * input_shape[-1])


def feature_model(
    backbone: keras.Model | None = None,
    trunk_layer: str = TRUNK_LAYER,
    feature_layer: str = FEATURE_LAYER,
    texture_layers: tuple[str, ...] = TEXTURE_LAYERS,
    pool_top: bool = True,
) -> keras.Model:
    """Image -> (a trunk grid, the globally averaged top grid, texture statistics) in one pass.

    By default Lite0's 14x14x112 block-10 grid, its 1280-d pooled features and the channel
    statistics of TEXTURE_LAYERS, which the classifier reads; the layer names pick them out of
    another backbone (no texture layers: the first two outputs only). With `pool_top` False the
    top grid comes out whole (7x7x1280): the caption grounding reads its regions.
    """
    backbone = backbone or load_lite0()
    trunk = backbone.get_layer(trunk_layer).output
    top = backbone.get_layer(feature_layer).output
    outputs = [trunk, keras.layers.GlobalAveragePooling2D(name="pool")(top) if pool_top else top]
    if texture_layers:
        stats = [
            ChannelStats(name=f"{name}_stats")(backbone.get_layer(name).output)
            for name in texture_layers
        ]
        outputs.append(keras.layers.Concatenate(name="texture")(stats))
    return keras.Model(backbone.input, outputs, name="feature_extractor")


@dataclass
class FeatureCache:
    """Views of a split through the frozen backbone: trunk grids, pooled vectors and texture
    statistics of more layers."""

    index: pd.DataFrame
    trunk: np.ndarray  # (views, 14, 14, 112) float16, memory-mapped
    pooled: np.ndarray  # (views, 1280) float16, memory-mapped
    texture: np.ndarray  # (views, TEXTURE_DIM) float32, memory-mapped

    def rows(self, split: str, view: str | None = None) -> np.ndarray:
        """Positions of a split's rows (all its views, or one)."""
        mask = self.index["split"] == split
        if view is not None:
            mask &= self.index["view"] == view
        return np.flatnonzero(mask.to_numpy())


def channel_stats(grids: np.ndarray) -> np.ndarray:
    """Per-channel mean and standard deviation over positions, in float32: what the head's
    ChannelStats layer computes, done once beforehand for heads trained many times (LOSO)."""
    grids = np.asarray(grids, np.float32)
    std = np.sqrt(grids.var(axis=(1, 2)) + 1e-6)
    return np.concatenate([grids.mean(axis=(1, 2)), std], axis=-1)


def flat_features(cache: FeatureCache, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """(texture statistics, pooled features) of every cached view, float32 in memory: block
    10's channel statistics, then those of TEXTURE_LAYERS, as the head joins them."""
    stats = np.concatenate(
        [channel_stats(cache.trunk[i : i + chunk]) for i in range(0, len(cache.index), chunk)]
    )
    texture = np.hstack([stats, np.asarray(cache.texture, np.float32)])
    return texture, np.asarray(cache.pooled, np.float32)


def head_inputs(
    kind: str, trunk: np.ndarray, pooled: np.ndarray, texture: np.ndarray
) -> list[np.ndarray]:
    """Which frozen outputs a trained part of `kind` reads: a transfer head all three (trunk
    grid, pooled grid, texture statistics), a fine-tuned top the trunk grid and the texture."""
    return [trunk, pooled, texture] if kind == "transfer" else [trunk, texture]


def model_inputs(cache: FeatureCache, rows: np.ndarray, kind: str) -> list[np.ndarray]:
    """`head_inputs` of the cached views `rows`."""
    return head_inputs(
        kind,
        np.asarray(cache.trunk[rows]),
        np.asarray(cache.pooled[rows], np.float32),
        np.asarray(cache.texture[rows], np.float32),
    )


def _cache_key(index: pd.DataFrame) -> str:
    text = index[["path", "split", "view"]].to_csv(index=False)
    text += f"aug{AUGMENTATION_VERSION}" + FEATURE_BACKBONE + ",".join(TEXTURE_LAYERS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _batches(index: pd.DataFrame, start: int, size: int, data: Path) -> Iterator[np.ndarray]:
    """Model-ready batches of the views from row `start` on (decoding stays in this process)."""
    for first in range(start, len(index), size):
        chunk = index.iloc[first : first + size]
        yield np.stack(
            [
                to_model_input(view_of(load_image(data / path), path, view))
                for path, view in chunk[["path", "view"]].itertuples(index=False)
            ]
        )


def build_feature_cache(
    split: pd.DataFrame,
    cache_dir: Path | None = None,
    data: Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> FeatureCache:
    """Compute (or resume, or reuse) the features of every view of `split`.

    The folder is named after a hash of the views and the augmentation version, so a changed
    split or augmentation never reads stale features. `done.json` is updated after every batch:
    an interrupted run resumes where it stopped.
    """
    data = data or data_dir()
    index = view_index(split)
    folder = (cache_dir or paths.cache_dir()) / "doctype" / _cache_key(index)
    folder.mkdir(parents=True, exist_ok=True)
    done_path = folder / "done.json"
    done = json.loads(done_path.read_text())["rows"] if done_path.exists() else 0
    mode = "r+" if done else "w+"
    model = feature_model()
    trunk_shape = tuple(model.outputs[0].shape[1:])
    trunk = np.lib.format.open_memmap(
        folder / "trunk.npy", mode, np.float16, (len(index), *trunk_shape)
    )
    pooled = np.lib.format.open_memmap(
        folder / "pooled.npy", mode, np.float16, (len(index), model.outputs[1].shape[-1])
    )
    texture = np.lib.format.open_memmap(
        folder / "texture.npy", mode, np.float32, (len(index), model.outputs[2].shape[-1])
    )
    if done < len(index):
        index.to_csv(folder / "index.csv", index=False)
        bar = tqdm(
            total=len(index), initial=done, desc="features", unit="view", disable=not progress
        )
        for batch in _batches(index, done, batch_size, data):
            grids, vectors, statistics = model.predict_on_batch(batch)
            trunk[done : done + len(batch)] = grids
            pooled[done : done + len(batch)] = vectors
            texture[done : done + len(batch)] = statistics
            done += len(batch)
            for array in (trunk, pooled, texture):
                array.flush()
            done_path.write_text(json.dumps({"rows": done}))
            bar.update(len(batch))
        bar.close()
    del trunk, pooled, texture  # reopen read-only
    return FeatureCache(
        index,
        *(
            np.load(folder / f"{name}.npy", mmap_mode="r")
            for name in ("trunk", "pooled", "texture")
        ),
    )


def with_extra(cache: FeatureCache, extra: FeatureCache) -> FeatureCache:
    """One cache of both: `extra`'s rows (training-only additions) marked in column `extra`."""
    index = pd.concat(
        [cache.index.assign(extra=False), extra.index.assign(extra=True)], ignore_index=True
    )
    return FeatureCache(
        index,
        np.concatenate([cache.trunk, extra.trunk]),
        np.concatenate([cache.pooled, extra.pooled]),
        np.concatenate([cache.texture, extra.texture]),
    )


def load_clean_images(
    split: pd.DataFrame, size: int, data: Path | None = None, progress: bool = True
) -> np.ndarray:
    """Every image of `split` resized to (size, size), as uint8, for the from-scratch baseline."""
    data = data or data_dir()
    images = np.empty((len(split), size, size, 3), np.uint8)
    paths = tqdm(split["path"], desc="images", unit="img", disable=not progress)
    for i, path in enumerate(paths):
        images[i] = np.rint(to_model_input(load_image(data / path), size) * 255)
    return images
