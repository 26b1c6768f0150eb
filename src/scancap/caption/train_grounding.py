"""Training the grounding detectors (person, animal, flower) and choosing their thresholds.

Training data: Flickr8k train photos, labelled by what their five human captions mention (a
positive when at least POSITIVE_MENTIONS do, a negative when none does, dropped otherwise), and
tf_flowers photos, which show no person and no animal and are the flower detector's positives.
Person and animal thresholds: the `select` half of the hand-labelled out-of-domain set
(`benchmarks/labels/caption_ood.csv`; its `report` half is never read here). The flower
threshold: out-of-fold probabilities of the training photos, at most 5% false positives.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from scancap.caption.data import build_feature_cache, load_captions, load_split
from scancap.caption.grounding import (
    ANIMAL_WORDS,
    PERSON_WORDS,
    THING_CONCEPTS,
    Detector,
    Grounding,
    detector_input,
    mentions,
    pooled,
    softmax,
)
from scancap.caption.model import Captioner
from scancap.io import load_image
from scancap.paths import REPO_ROOT, data_dir

LABELS_FILE = REPO_ROOT / "benchmarks" / "labels" / "caption_ood.csv"
CONCEPTS = {"person": PERSON_WORDS, "animal": ANIMAL_WORDS} | THING_CONCEPTS
POSITIVE_MENTIONS = 3  # of 5 captions
MAX_FALSE_POSITIVE_RATE = 0.05  # on the select half's photos without the concept
NEGATIVE_SOURCES = ("tf_flowers",)  # doctype photo sources that show neither concept
SAMPLES = REPO_ROOT / "samples"
NEAR_DUPLICATE = 0.95  # cosine of pooled grids above which a training photo is a sample's copy
CHUNK = 1000


def caption_labels(captions: pd.DataFrame, images: list[str]) -> pd.DataFrame:
    """Per Flickr8k image, 1 / 0 / NaN (ambiguous) for each concept, from its captions."""
    grouped = captions.groupby("image")["caption"].apply(list)
    rows = {}
    for concept, words in CONCEPTS.items():
        counts = np.array([sum(mentions(c, words) for c in grouped[image]) for image in images])
        rows[concept] = np.where(
            counts >= POSITIVE_MENTIONS, 1.0, np.where(counts == 0, 0.0, np.nan)
        )
    return pd.DataFrame(rows, index=images)


def load_labelled(part: str, labels_file: Path = LABELS_FILE) -> pd.DataFrame:
    """The hand labels of one half (`select` or `report`) of the out-of-domain set."""
    frame = pd.read_csv(labels_file)
    return frame[frame["part"] == part].reset_index(drop=True)


def negative_photos(data: Path, exclude: set[str]) -> list[str]:
    """Paths (relative to the data folder) of the doctype photos that show neither concept."""
    manifest = pd.read_csv(data / "doctype" / "manifest.csv")
    chosen = manifest[manifest["source"].isin(NEGATIVE_SOURCES) & ~manifest["path"].isin(exclude)]
    return chosen["path"].tolist()


def not_near(features: np.ndarray, others: np.ndarray, limit: float = NEAR_DUPLICATE) -> np.ndarray:
    """Rows of `features` whose cosine similarity to every row of `others` stays below limit:
    the bundled samples came from tf_flowers too, and a test checks their captions."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    other = others / np.linalg.norm(others, axis=1, keepdims=True)
    return (unit @ other.T).max(axis=1) < limit


def pooled_features(grids: np.ndarray) -> np.ndarray:
    """Pooled grids of a (possibly memory-mapped) stack, a chunk at a time."""
    return np.concatenate([pooled(grids[i : i + CHUNK]) for i in range(0, len(grids), CHUNK)])


def detector_features(
    concept: str, features: np.ndarray, head: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    kernel, bias = head
    return detector_input(concept, features, softmax(features @ kernel + bias))


def out_of_fold(features: np.ndarray, labels: np.ndarray, folds: int = 5) -> np.ndarray:
    """Each training photo's probability from a detector fitted without its fold."""
    order = np.random.default_rng(0).permutation(len(labels))
    p = np.empty(len(labels))
    for part in np.array_split(order, folds):
        rest = np.setdiff1d(order, part)
        p[part] = fit_logistic(features[rest], labels[rest]).probability(features[part])
    return p


def fit_logistic(features: np.ndarray, labels: np.ndarray) -> Detector:
    """A balanced logistic regression on standardised features (threshold set later)."""
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000)
    model.fit((features - mean) / scale, labels)
    return Detector(mean, scale, model.coef_[0], float(model.intercept_[0]), 0.5)


def lowest_threshold(p_negatives: np.ndarray, max_rate: float = MAX_FALSE_POSITIVE_RATE) -> float:
    """The lowest threshold at which at most `max_rate` of the negatives reach it."""
    allowed = int(np.floor(max_rate * len(p_negatives)))
    ranked = np.sort(p_negatives)[::-1]
    return float(np.nextafter(ranked[allowed], 1.0)) if allowed < len(ranked) else 0.0


def train_grounding(
    model_dir: Path | None = None,
    data: Path | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> Grounding:
    """Fit both detectors and set their thresholds on the select half; returns the grounding."""
    data = data or data_dir()
    captioner = Captioner.load(model_dir)
    head = captioner.imagenet_head
    images = load_split("train", data, limit)
    flickr = pooled_features(build_feature_cache(images, cache_dir, data, progress=progress).grids)
    labels = caption_labels(load_captions(data), images)
    select = load_labelled("select")
    exclude = set(pd.read_csv(LABELS_FILE)["path"])
    negatives = negative_photos(data, exclude)[: limit or None]
    extra = pooled(captioner.grids([load_image(data / p) for p in negatives]))
    samples = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    extra = extra[not_near(extra, pooled(captioner.grids([load_image(p) for p in samples])))]
    chosen = pooled(captioner.grids([load_image(data / p) for p in select["path"]]))
    detectors = {}
    for concept in ("person", "animal"):
        known = labels[concept].notna().to_numpy()
        x = detector_features(concept, np.concatenate([flickr[known], extra]), head)
        y = np.concatenate([labels[concept].to_numpy()[known], np.zeros(len(extra))])
        detector = fit_logistic(x, y)
        p_select = detector.probability(detector_features(concept, chosen, head))
        threshold = lowest_threshold(p_select[select[concept].to_numpy() == 0])
        detectors[concept] = replace(detector, threshold=threshold)
    for concept in THING_CONCEPTS:  # tf_flowers photos are the positives
        negative = (labels[concept] == 0).to_numpy()
        x = detector_features(concept, np.concatenate([flickr[negative], extra]), head)
        y = np.concatenate([np.zeros(negative.sum()), np.ones(len(extra))])
        threshold = lowest_threshold(out_of_fold(x, y)[y == 0])
        detectors[concept] = replace(fit_logistic(x, y), threshold=threshold)
    return Grounding(*head, detectors)
