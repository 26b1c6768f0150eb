"""Leave-one-source-out (LOSO) evaluation: how the classifier does on a source it has never seen.

A random split puts every source in train, val and test, so its test accuracy rewards a model
that memorises its sources' look (what landscapes look like in *this* painting collection).
Here each of the 36 sources is held out in turn: a head is trained on the training images of
every other source, calibrated and thresholded on their val images, and then decides every
image of the held-out source. What comes out is one prediction per image of the manifest, made
by a model that never saw its source (`benchmarks/classifier_loso.py` runs the folds, with
resume); every table below is read from those predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from scancap.classify.data import FeatureCache
from scancap.classify.metrics import bootstrap
from scancap.classify.model import PHOTO, Calibration
from scancap.classify.train import Dataset, TrainConfig, build_flat_head, fit, logits

OLD_PHOTO_SOURCES = ("deoldify_old_photos", "bop_old_photos")


Features = tuple[np.ndarray, np.ndarray]  # (texture statistics, pooled), one row per view


def fold_dataset(
    cache: FeatureCache, features: Features, config: TrainConfig, held_out: str
) -> Dataset:
    """Train on the other sources' training views, validate on their clean val images, and
    evaluate on every clean image of the held-out source (train, val and test alike)."""
    index = cache.index
    labels = index["y"].to_numpy()
    other = (index["source"] != held_out).to_numpy()
    clean = (index["view"] == "clean").to_numpy()
    in_split = {name: (index["split"] == name).to_numpy() for name in ("train", "val")}
    train_rows = np.flatnonzero(other & in_split["train"] & (clean | config.augmented_views))

    def take(rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        return [part[rows] for part in features], labels[rows]

    evals = {
        "val": take(np.flatnonzero(other & in_split["val"] & clean)),
        "held_out": take(np.flatnonzero(judged(index, held_out))),
    }
    return Dataset(
        take(train_rows),
        evals,
        index["view"].to_numpy()[train_rows],
        index["source"].to_numpy()[train_rows],
    )


def judged(index: pd.DataFrame, held_out: str) -> np.ndarray:
    """The held-out source's clean images, as the v9 folds judged them: rows marked `extra`
    (training-only additions such as the unused Flickr8k photos) train, and are never judged."""
    extra = index["extra"].to_numpy(bool) if "extra" in index else np.zeros(len(index), bool)
    return ((index["source"] == held_out) & (index["view"] == "clean")).to_numpy() & ~extra


def run_fold(
    cache: FeatureCache, features: Features, config: TrainConfig, held_out: str
) -> pd.DataFrame:
    """The held-out source's images with the fold model's calibrated p(photo) and decision.

    The fold's head is the shipped head on texture statistics computed beforehand
    (`build_flat_head`): the same function, trained many times over without re-reading grids.
    """
    data = fold_dataset(cache, features, config, held_out)
    model = build_flat_head(config, data)
    _, seconds = fit(model, config, data)
    return decide(model, data, cache.index[judged(cache.index, held_out)], seconds)


def decide(model: keras.Model, data: Dataset, rows: pd.DataFrame, seconds: float) -> pd.DataFrame:
    """The held-out `rows` (data.evals["held_out"]) with the fold model's calibrated p(photo)
    and decision, calibrated and thresholded on the fold's own val images."""
    val_logits, _ = logits(model, data.evals["val"][0])
    calibration = Calibration.fit(val_logits, data.evals["val"][1] == PHOTO)
    photo, subtype = logits(model, data.evals["held_out"][0])
    p_photo = calibration.p_photo(photo)
    return rows[["path", "label", "source", "split", "y"]].assign(
        p_photo=p_photo,
        called_photo=p_photo >= calibration.threshold,
        threshold=calibration.threshold,
        subtype=subtype.argmax(axis=1),
        fold_seconds=seconds,
    )


def correct(predictions: pd.DataFrame) -> pd.Series:
    """Whether each image went the right way: photos called photo, the rest not."""
    return predictions["called_photo"] == (predictions["y"] == PHOTO)


def brier(predictions: pd.DataFrame) -> pd.Series:
    return (predictions["p_photo"] - (predictions["y"] == PHOTO)) ** 2


def per_source(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per held-out source: images, accuracy (photo sources: share called photo; others: share
    kept out), errors, mean p(photo) and Brier score (calibration on a source never seen)."""
    frame = predictions.assign(correct=correct(predictions), brier=brier(predictions))
    table = frame.groupby(["label", "source"]).agg(
        images=("path", "size"),
        accuracy=("correct", "mean"),
        errors=("correct", lambda c: int((~c).sum())),
        mean_p_photo=("p_photo", "mean"),
        brier=("brier", "mean"),
    )
    return table.reset_index().sort_values(["label", "accuracy"], ignore_index=True)


@dataclass(frozen=True)
class LosoSummary:
    """The pooled LOSO measures the targets are stated in, with 95% bootstrap intervals."""

    accuracy: tuple[float, float, float]  # over every held-out image
    source_mean_accuracy: float  # each source counts once: the selection criterion
    photo_recall: tuple[float, float, float]  # over the photo sources' images
    paintings_kept_out: tuple[float, float, float]  # over the painting sources' images
    old_photo_recall: tuple[float, float, float]
    worst_photo_source: tuple[str, float]
    worst_source: tuple[str, float]


def source_bootstrap(
    hits: np.ndarray, groups: np.ndarray, rounds: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Pooled share of hits with a 95% interval from resampling whole sources.

    Images of one source succeed or fail together, so resampling images would pretend there
    are thousands of independent draws; the question is how the next *source* will fare.
    """
    names, codes = np.unique(groups, return_inverse=True)
    hit_sums = np.bincount(codes, weights=hits.astype(float), minlength=len(names))
    sizes = np.bincount(codes, minlength=len(names)).astype(float)

    def share(rows: np.ndarray) -> dict[str, float]:
        return {"share": hit_sums[rows].sum() / sizes[rows].sum()}

    return bootstrap(share, len(names), rounds, seed)["share"]


def summarise(predictions: pd.DataFrame, rounds: int = 1000, seed: int = 0) -> LosoSummary:
    """Pooled measures over held-out images, with intervals over sources."""
    hits = correct(predictions).to_numpy()
    label = predictions["label"].to_numpy()
    source = predictions["source"].to_numpy()
    sources = per_source(predictions)
    photos = sources[sources["label"] == "photo"]
    worst_photo = (
        photos.loc[photos["accuracy"].idxmin()]
        if len(photos)
        else {"source": "", "accuracy": np.nan}
    )
    worst = sources.loc[sources["accuracy"].idxmin()]

    def interval(mask: np.ndarray) -> tuple[float, float, float]:
        if not mask.any():
            return (np.nan, np.nan, np.nan)
        return source_bootstrap(hits[mask], source[mask], rounds, seed)

    return LosoSummary(
        accuracy=interval(np.ones_like(hits, bool)),
        source_mean_accuracy=float(sources["accuracy"].mean()),
        photo_recall=interval(label == "photo"),
        paintings_kept_out=interval(label == "painting"),
        old_photo_recall=interval(np.isin(source, OLD_PHOTO_SOURCES)),
        worst_photo_source=(str(worst_photo["source"]), float(worst_photo["accuracy"])),
        worst_source=(f"{worst['label']}/{worst['source']}", float(worst["accuracy"])),
    )


def criterion(summary: LosoSummary) -> tuple[float, float]:
    """What candidate selection maximises: the mean accuracy over held-out sources (each source
    once, so the big ones cannot hide the small ones), then the worst photo source's."""
    return round(summary.source_mean_accuracy, 4), round(summary.worst_photo_source[1], 4)
