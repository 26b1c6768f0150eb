"""The frozen features of every doctype image as it is (one clean view each), for studies that
decide, correct and compare images of held-out sources without retraining the backbone.

One pass of the classifier's frozen Lite0 part per image: the pooled top grid (1280 values, what
the image shows) and the texture statistics the head reads (block 10's channel statistics, then
those of the other texture layers). Cached as one .npz per manifest, keyed by its content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from scancap import paths
from scancap.backbones.inputs import to_model_input
from scancap.classify.data import channel_stats, feature_model, load_manifest
from scancap.io import load_image

BATCH = 64


def manifest_key(manifest: pd.DataFrame) -> str:
    return hashlib.sha256(manifest["path"].str.cat(sep="\n").encode()).hexdigest()[:16]


def clean_features(
    data: Path | None = None, cache_dir: Path | None = None, progress: bool = True
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(manifest, texture statistics (n, d) float32, pooled (n, 1280) float32), row for row."""
    data = data or paths.data_dir()
    manifest = load_manifest(data)
    target = (cache_dir or paths.cache_dir()) / "archive" / f"{manifest_key(manifest)}.npz"
    if target.exists():
        stored = np.load(target)
        return manifest, stored["texture"], stored["pooled"]
    model = feature_model()
    texture, pooled = [], []
    for start in tqdm(range(0, len(manifest), BATCH), desc="features", disable=not progress):
        chunk = manifest["path"].iloc[start : start + BATCH]
        batch = np.stack([to_model_input(load_image(data / path)) for path in chunk])
        trunk, vectors, statistics = model.predict_on_batch(batch)
        texture.append(np.hstack([channel_stats(trunk), np.asarray(statistics, np.float32)]))
        pooled.append(np.asarray(vectors, np.float32))
    target.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"texture": np.concatenate(texture), "pooled": np.concatenate(pooled)}
    np.savez(target.with_suffix(".partial.npz"), **arrays)
    target.with_suffix(".partial.npz").replace(target)
    return manifest, arrays["texture"], arrays["pooled"]
