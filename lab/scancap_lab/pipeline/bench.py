"""Measurements of the whole product: throughput, memory, and whether restoration helps captions.

Used by benchmarks/pipeline.py (which writes reports/pipeline.md) and notebook 04. Every
generated input is seeded, and read from the shared data folder, never committed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from scancap.caption.data import FLICKR, load_captions, load_split, references
from scancap.caption.metrics import caption_scores
from scancap.caption.model import Captioner
from scancap.classify.data import load_manifest
from scancap.io import load_image, save_image
from scancap.paths import data_dir
from scancap.quality import degrade, psnr
from scancap.restore.auto import restore_image

SEED = 2026
SIZES = (224, 1024)  # long side of the throughput set's photos


def _flickr_images(data: Path, split: str, limit: int | None) -> list[tuple[str, Path]]:
    return [(name, data / FLICKR / "images" / name) for name in load_split(split, data, limit)]


SCAN_MEGAPIXELS = (2.0, 20.0)  # the sizes of real scanned prints and camera photos


def make_scan_set(
    out: Path, count: int = 24, data: Path | None = None, megapixels: float | None = None
) -> list[Path]:
    """`count` photos of 2 to 20 megapixels (seeded, uniform in megapixels; the last one at
    the top), or all of `megapixels`, as JPEG 92: Kodak24 and CBSD68 photos **upscaled**
    (bicubic) with seeded grain (σ=6) added after upscaling, so the files have the size and
    the noise of real scans. No full-resolution photo ships in the shared data; these test
    memory and speed, not quality.
    """
    data = data or data_dir()
    sources = sorted((data / "restoration" / "Kodak24").glob("*.png"))
    sources += sorted((data / "restoration" / "CBSD68").glob("*.png"))
    rng = np.random.default_rng(SEED)
    sizes = rng.uniform(*SCAN_MEGAPIXELS, count)
    sizes[-1] = SCAN_MEGAPIXELS[1]
    if megapixels is not None:
        sizes[:] = megapixels
    written = []
    for i, megapixels in enumerate(sizes):
        image = load_image(sources[int(rng.integers(len(sources)))])
        scale = np.sqrt(megapixels * 1e6 / (image.shape[0] * image.shape[1]))
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        big = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
        grain = rng.normal(0.0, 6.0, big.shape[:2])[..., None].astype(np.float32)
        scanned = np.clip(big + grain, 0, 255).astype(np.uint8)
        written.append(save_image(out / f"scan_{i:03d}.jpg", scanned, quality=92))
    return written


def make_photo_set(out: Path, count: int = 200, data: Path | None = None) -> list[Path]:
    """`count` photos with a long side drawn uniformly in 224-1024 px (seeded), as JPEG 90.

    Sources: the restoration benchmarks' colour photos (481x321, 500x500) and Flickr8k dev
    (224x224), resized, so sizes and content vary as in a real batch of scanned prints.
    """
    data = data or data_dir()
    sources = sorted((data / "restoration" / "CBSD68").glob("*.png"))
    sources += sorted((data / "restoration" / "Kodak24").glob("*.png"))
    sources += [path for _, path in _flickr_images(data, "dev", None)]
    rng = np.random.default_rng(SEED)
    chosen = rng.choice(len(sources), size=count, replace=False)
    written = []
    for i, index in enumerate(chosen):
        image = load_image(sources[index])
        side = int(rng.integers(SIZES[0], SIZES[1] + 1))
        scale = side / max(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        shrink = scale < 1
        method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        resized = cv2.resize(image, size, interpolation=method)
        written.append(save_image(out / f"photo_{i:04d}.jpg", resized, quality=90))
    return written


def link_large_set(out: Path, count: int = 10_000, data: Path | None = None) -> int:
    """`count` inputs as symbolic links: every doctype image, then Flickr8k dev and train photos.

    The 1,000 Flickr8k photos of the doctype set come from train, so a few photos appear twice
    under different names, as re-scanned prints do in a real archive.
    """
    data = data or data_dir()
    manifest = load_manifest(data)
    paths = [data / p for p in manifest["path"]]
    paths += [path for split in ("dev", "train") for _, path in _flickr_images(data, split, None)]
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths[:count]):
        link = out / f"{i:05d}{path.suffix.lower()}"
        if not link.exists():
            os.symlink(path, link)
    return min(count, len(paths))


# --- does restoration help captioning? ------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A degradation of the study (noise σ and blur σ_b in pixels, on 0-255 images)."""

    name: str
    noise: float
    blur: float


CONDITIONS = (
    Condition("noise σ=25", 25.0, 0.0),
    Condition("blur σ_b=1.5", 0.0, 1.5),
    Condition("noise σ=25 + blur σ_b=1.5", 25.0, 1.5),
)
RESTORE_MODES = ("auto", "auto-fast")


def degraded_versions(image: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """The image under each condition of the study (seeded)."""
    return {c.name: degrade(image, c.noise, c.blur, seed=seed) for c in CONDITIONS}


def study_inputs(
    images: list[tuple[str, np.ndarray]],
) -> Iterator[tuple[str, str, str, np.ndarray, float]]:
    """(condition, version, image name, pixels, PSNR to clean) for every copy of every image."""
    for name, image in images:
        yield "clean", "clean", name, image, psnr(image, image)
    for i, (name, image) in enumerate(images):
        for condition, degraded in degraded_versions(image, SEED + i).items():
            yield condition, "degraded", name, degraded, psnr(image, degraded)
            for mode in RESTORE_MODES:
                restored = restore_image(degraded, mode)[0]
                yield condition, f"restored ({mode})", name, restored, psnr(image, restored)


def restoration_caption_study(
    data: Path | None = None,
    limit: int | None = None,
    beam: int = 3,
    batch: int = 100,
    ptb: bool = True,
) -> pd.DataFrame:
    """BLEU-4 and CIDEr-D on Flickr8k dev for clean, degraded and restored copies of each photo.

    One row per (condition, version); captions come from the shipped captioner with the
    shipped beam. Restoration is blind: it measures the noise and blur itself. `ptb=False`
    tokenizes with scancap's tokenizer instead of the official Java one (two Java processes
    per row), for quick runs such as the notebook's fast mode.
    """
    data = data or data_dir()
    named = _flickr_images(data, "dev", limit)
    images = [(name, load_image(path)) for name, path in named]
    refs = references(load_captions(data), [name for name, _ in named])
    captioner = Captioner.load()
    captions: dict[tuple[str, str], dict[str, str]] = {}
    fidelity: dict[tuple[str, str], list[float]] = {}
    pending: list[tuple[str, str, str, np.ndarray, float]] = []

    def flush() -> None:
        texts = captioner.caption_images([item[3] for item in pending], beam=beam)
        for (condition, version, name, _, db), (text, _) in zip(pending, texts, strict=True):
            captions.setdefault((condition, version), {})[name] = text
            fidelity.setdefault((condition, version), []).append(db)
        pending.clear()

    start = time.perf_counter()
    for item in study_inputs(images):
        pending.append(item)
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    rows = []
    for (condition, version), candidates in captions.items():
        scores, _ = caption_scores(refs, candidates, meteor=False, ptb=ptb)
        rows.append(
            {
                "condition": condition,
                "version": version,
                "PSNR (dB)": float(np.mean(fidelity[condition, version])),
                "BLEU-4": scores["BLEU-4"],
                "CIDEr-D": scores["CIDEr-D"],
                "images": len(candidates),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["seconds"] = time.perf_counter() - start
    return table


def photo_recall_under_degradation(
    data: Path | None = None, limit: int | None = None
) -> pd.DataFrame:
    """How often the shipped classifier still calls a Flickr8k dev photo a photo, per condition.

    The pipeline classifies before it restores: a photo sorted as a non-photo is neither
    restored nor captioned, so this bounds what restoration can do for captions in the product.
    """
    from scancap.classify.model import Classifier

    data = data or data_dir()
    images = [load_image(path) for _, path in _flickr_images(data, "dev", limit)]
    classifier = Classifier.load()
    rows = []
    for condition in ("clean", *[c.name for c in CONDITIONS]):
        copies = [
            image if condition == "clean" else degraded_versions(image, SEED + i)[condition]
            for i, image in enumerate(images)
        ]
        predictions = classifier.predict(copies)
        subtypes = pd.Series([p.subtype for p in predictions])
        rows.append(
            {
                "condition": condition,
                "photo recall": float(np.mean([p.is_photo for p in predictions])),
                "mean p(photo)": float(np.mean([p.p_photo for p in predictions])),
                "most common other label": subtypes[subtypes != "photo"].mode().iat[0]
                if (subtypes != "photo").any()
                else "",
                "images": len(images),
            }
        )
    return pd.DataFrame(rows)
