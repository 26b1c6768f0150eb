"""Training the grounding detectors (person, animal, flower, the dog gate) and their thresholds.

The person detector is a multiple-instance detector on the regions of two grids side by side, the
captioner's MobileNetV2 and the classifier's EfficientNet-Lite0 (`scancap.caption.mil`); the
animal and flower detectors are logistic regressions on the pooled MobileNetV2 grid.

Training data: Flickr8k train photos, labelled by what their five human captions mention (a
positive when at least POSITIVE_MENTIONS do, a negative when none does, dropped otherwise), and
photos of a few doctype sources with the labels most of their photos have (SOURCE_LABELS).
Regularisation (by ROC-AUC) and thresholds: the `select` half of the hand-labelled set
(`benchmarks/labels/caption_ood.csv`; its `report` half is never read here); a photo of the
select half shows a flower when it comes from tf_flowers. Each threshold is the higher of the
select half's and the one from out-of-fold predictions for the sources' negatives, both at the
detector's false-positive budget (rules and measurements: `reports/captioning_experiments.md`).
The dog gate is no fit: ImageNet's dog-breed mass, with the threshold that keeps DOG_KEPT of the
Flickr8k train photos whose captions name a dog.
The detectors named in DEGRADED_COPIES also train on a degraded copy of each photo (blurred and
noisy, as a soft scan is), with its label: detectors fit on clean photos alone lost four in ten
people on a mildly blurred photo (reports/grounding_blur.md, reports/grounding_degraded.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from scancap.caption import mil
from scancap.caption.data import (
    FLICKR,
    build_feature_cache,
    load_captions,
    load_split,
)
from scancap.caption.grounding import (
    ANIMAL_WORDS,
    BOTH_REGIONS,
    DOG_GATE,
    DOG_MASS,
    DOG_WORDS,
    LITE0_READS,
    MOBILENET,
    PERSON_WORDS,
    REGION_READS,
    REGIONS,
    THING_CONCEPTS,
    Detector,
    Grounding,
    detector_input,
    dog_breed_mass,
    mentions,
    pooled,
    region_features,
)
from scancap.caption.model import Captioner
from scancap.io import load_image
from scancap.paths import data_dir
from scancap.quality import degrade

CONCEPTS = {"person": PERSON_WORDS, "animal": ANIMAL_WORDS} | THING_CONCEPTS
POSITIVE_MENTIONS = 3  # of 5 captions
MAX_FALSE_POSITIVE_RATE = 0.05  # on the select half's photos without the concept
# Per detector, the false-positive budget of its threshold: person and animal share the largest
# whose select union rate stays at most 5% (the tenth change: reports/grounding_mil.md).
BUDGETS = {"person": 0.03, "animal": 0.03, "flower": MAX_FALSE_POSITIVE_RATE}
# What each detector reads: the person detector scores the regions, where a small person is not
# averaged away (the tenth change), of both backbones (the twelfth: reports/grounding_mil_lite0.md);
# animals and flowers the pooled MobileNetV2 grid.
DETECTOR_READS = {"person": BOTH_REGIONS, "animal": MOBILENET, "flower": MOBILENET}
NEEDS_LITE0 = any(r in LITE0_READS for r in DETECTOR_READS.values())  # the fit reads Lite0
FOLDS = 5
DOG_KEPT = 0.98  # of Flickr8k's captioned dogs, the share whose dog words the gate keeps
SEED = 0
REGULARISATION = (1.0, 0.1, 0.01, 0.001)  # logistic regression C, chosen by select ROC-AUC
# Doctype photo sources with the labels their photos mostly have (weak labels: a landscape
# source holds a few people). Flickr8k alone teaches "no dog, so a person": its photos without
# people are mostly dogs. Sources were picked by their rates on the select half only.
SOURCE_LABELS = {  # source: (person, animal, flower)
    "tf_flowers": (0, 0, 1),
    "endless_sky_landscapes": (0, 0, 0),
    "debian_packaged_photos": (0, 0, 0),
    "deep_photo_style_photos": (0, 0, 0),
    "deoldify_old_photos": (1, 0, 0),
    "coco_like_scenes": (1, 0, 0),
}
FLOWER_SOURCES = ("tf_flowers",)  # the select half's photos from elsewhere are flower-free
NEAR_DUPLICATE = 0.95  # cosine of pooled grids above which a training photo is a sample's copy
CHUNK = 256  # images (or grids) at a time
# The detectors whose training photos also enter once degraded: all three did not pass (the
# fifteenth change: reports/grounding_degraded.md).
DEGRADED_COPIES: frozenset[str] = frozenset()
BLUR_RANGE = (0.0, 2.0)  # a degraded copy's Gaussian blur σ_b in pixels, drawn per photo
NOISE_RANGE = (0.0, 30.0)  # then its Gaussian noise σ on the 0-255 scale, drawn per photo
GRID_SHAPE = (49, 1280)  # a photo's regions, as the region detectors read them
GRAINY = ("person", "animal")  # the subject detectors that get a threshold for grainy photos
GRAIN_REFERENCE = 1000  # first Flickr8k train photos: the largest σ̂ among them is the grain level


def caption_labels(
    captions: pd.DataFrame, images: list[str], concepts: dict[str, frozenset[str]] = CONCEPTS
) -> pd.DataFrame:
    """Per Flickr8k image, 1 / 0 / NaN (ambiguous) for each concept, from its captions."""
    grouped = captions.groupby("image")["caption"].apply(list)
    rows = {}
    for concept, words in concepts.items():
        counts = np.array([sum(mentions(c, words) for c in grouped[image]) for image in images])
        rows[concept] = np.where(
            counts >= POSITIVE_MENTIONS, 1.0, np.where(counts == 0, 0.0, np.nan)
        )
    return pd.DataFrame(rows, index=images)


def load_labelled(part: str, labels_file: Path) -> pd.DataFrame:
    """The hand labels of one half (`select` or `report`) of the out-of-domain set."""
    frame = pd.read_csv(labels_file)
    return frame[frame["part"] == part].reset_index(drop=True)


def source_photos(data: Path, exclude: set[str], limit: int | None) -> pd.DataFrame:
    """Doctype photos of SOURCE_LABELS's sources with their weak labels (labelled set out)."""
    manifest = pd.read_csv(data / "doctype" / "manifest.csv")
    chosen = manifest[manifest["source"].isin(SOURCE_LABELS) & ~manifest["path"].isin(exclude)]
    chosen = chosen.groupby("source").head(limit) if limit else chosen
    labels = pd.DataFrame(
        [SOURCE_LABELS[s] for s in chosen["source"]], columns=list(CONCEPTS), index=chosen.index
    )
    return pd.concat([chosen[["path", "source"]], labels], axis=1).reset_index(drop=True)


def not_near(features: np.ndarray, others: np.ndarray, limit: float = NEAR_DUPLICATE) -> np.ndarray:
    """Rows of `features` whose cosine similarity to every row of `others` stays below limit:
    the bundled samples came from tf_flowers too, and a test checks their captions."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    other = others / np.linalg.norm(others, axis=1, keepdims=True)
    return (unit @ other.T).max(axis=1) < limit


def file_features(
    extract: Callable[[list[np.ndarray]], np.ndarray],
    paths: Sequence[Path],
    shape: tuple[int, ...] = (1280,),
    dtype: type = np.float32,
) -> np.ndarray:
    """(N, *shape) features of image files, decoded a chunk at a time (not all in memory)."""
    chunks = [
        extract([load_image(path) for path in paths[i : i + CHUNK]]).astype(dtype, copy=False)
        for i in range(0, len(paths), CHUNK)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, *shape), dtype)


def degraded_copy(image: np.ndarray, name: str) -> np.ndarray:
    """The photo as a soft, grainy scan might show it: a blur, then noise, of strengths drawn
    from BLUR_RANGE and NOISE_RANGE by a generator seeded with the file's name, so a photo's
    copy is the same in every run and in any order."""
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
    blur, noise = rng.uniform(*BLUR_RANGE), rng.uniform(*NOISE_RANGE)
    return degrade(image, noise, blur, seed=int(rng.integers(2**31)))


def degraded_grids(
    captioner: Captioner, paths: Sequence[Path], lite0: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 49, 1280) float16 MobileNetV2 grids of the files' degraded copies, and their Lite0
    grids where `lite0`: each copy is made once, for both backbones."""
    mobilenet = np.zeros((len(paths), *GRID_SHAPE), np.float16)
    lite = np.zeros_like(mobilenet) if lite0 else None
    for i in range(0, len(paths), CHUNK):
        images = [degraded_copy(load_image(path), path.name) for path in paths[i : i + CHUNK]]
        mobilenet[i : i + len(images)] = captioner.grids(images)
        if lite is not None:
            lite[i : i + len(images)] = captioner.lite0_grids(images)
    return mobilenet, lite


def cached_degraded_grids(
    captioner: Captioner, paths: Sequence[Path], lite0: bool, cache_dir: Path | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """`degraded_grids`, kept in the cache folder (named after the files and the degradation's
    settings, so other photos or settings never read stale grids) and memory-mapped back."""
    settings = {"files": [path.parts[-2:] for path in paths], "blur": BLUR_RANGE,
                "noise": NOISE_RANGE, "seed": SEED, "lite0": lite0}  # fmt: skip
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]
    folder = (cache_dir or paths.cache_dir()) / "grounding_degraded" / key
    names = ["mobilenet.npy"] + (["lite0.npy"] if lite0 else [])
    if not all((folder / name).exists() for name in names):
        folder.mkdir(parents=True, exist_ok=True)
        for name, grids in zip(names, degraded_grids(captioner, paths, lite0), strict=False):
            partial = folder / f"{name}.partial"
            with partial.open("wb") as handle:
                np.save(handle, grids)
            os.replace(partial, folder / name)  # a stopped run never leaves half a file
    grids = [np.load(folder / name, mmap_mode="r") for name in names]
    return grids[0], grids[1] if lite0 else None


def with_degraded_copies(
    captioner: Captioner, photos: LabelledPhotos, cache_dir: Path | None = None
) -> LabelledPhotos:
    """The photos with their degraded copies (`copies`), which the fits train on too."""
    mobilenet, lite0 = cached_degraded_grids(
        captioner, photos.paths, photos.lite0 is not None, cache_dir
    )
    copies = LabelledPhotos(pooled_features(mobilenet), photos.labels, lite0, mobilenet)
    return replace(photos, copies=copies)


def pooled_photos(captioner: Captioner, paths: Sequence[Path]) -> np.ndarray:
    """(N, 1280) pooled MobileNetV2 grids of image files, where only the mean is read."""
    return file_features(lambda images: pooled(captioner.grids(images)), paths)


def grid_photos(captioner: Captioner, paths: Sequence[Path]) -> np.ndarray:
    """(N, 49, 1280) MobileNetV2 grids of image files, in float16 (125 kB each), as the
    Flickr8k feature cache keeps them."""
    return file_features(captioner.grids, paths, GRID_SHAPE, np.float16)


def lite0_photos(captioner: Captioner, paths: Sequence[Path]) -> np.ndarray:
    """(N, 49, 1280) EfficientNet-Lite0 grids of image files (the classifier's), in float16."""
    return file_features(captioner.lite0_grids, paths, GRID_SHAPE, np.float16)


def pooled_features(grids: np.ndarray, statistics: str = "mean") -> np.ndarray:
    """`region_features` of a (possibly memory-mapped) stack of grids, a chunk at a time."""
    return np.concatenate(
        [region_features(grids[i : i + CHUNK], statistics) for i in range(0, len(grids), CHUNK)]
    )


def detector_features(
    concept: str,
    features: np.ndarray,
    head: tuple[np.ndarray, np.ndarray],
    lite0: np.ndarray | None = None,
    reads: str = MOBILENET,
) -> np.ndarray:
    """A detector's input, as `Grounding.evidence` builds it, from region features."""
    probabilities = imagenet_probabilities(features, head)
    return detector_input(concept, features, probabilities, lite0, reads)


def fit_logistic(features: np.ndarray, labels: np.ndarray, c: float = 1.0) -> Detector:
    """A balanced logistic regression on standardised features (threshold set later)."""
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
    model.fit((features - mean) / scale, labels)
    return Detector(mean, scale, model.coef_[0], float(model.intercept_[0]), 0.5)


def out_of_fold(x: np.ndarray, y: np.ndarray, c: float, copies: bool = False) -> np.ndarray:
    """Each training photo's probability from the detector fit on the other folds (with
    `copies`, `x` holds the photos then their degraded copies: `mil.fold_splits`)."""
    trained = np.tile(y, 2) if copies else y
    p = np.zeros(len(y))
    for fit, held in mil.fold_splits(y, FOLDS, SEED, copies):
        p[held] = fit_logistic(x[fit], trained[fit], c).probability(x[held])
    return p


def lowest_threshold(p_negatives: np.ndarray, max_rate: float = MAX_FALSE_POSITIVE_RATE) -> float:
    """The lowest threshold at which at most `max_rate` of the negatives reach it."""
    allowed = int(np.floor(max_rate * len(p_negatives)))
    ranked = np.sort(p_negatives)[::-1]
    return float(np.nextafter(ranked[allowed], 1.0)) if allowed < len(ranked) else 0.0


def operating_threshold(
    p_select_negatives: np.ndarray, p_source_negatives: np.ndarray, budget: float
) -> float:
    """A detector's threshold: the higher of the lowest with at most `budget` false positives
    on the select half and the same on the sources' out-of-fold negatives (more photos, from
    sources the select half holds few of)."""
    return max(
        lowest_threshold(p_select_negatives, budget), lowest_threshold(p_source_negatives, budget)
    )


def train_grounding(
    labels_file: Path,
    model_dir: Path | None = None,
    data: Path | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    exclude_near: list[Path] | None = None,
) -> Grounding:
    """Fit the detectors, set their thresholds (on the select half of `labels_file`, the
    hand-labelled photos; the dog gate's on Flickr8k's captioned dogs) and return the
    grounding. Source photos near one of `exclude_near` (photos a test judges) are left out."""
    data = data or data_dir()
    captioner = Captioner.load(model_dir)
    head = captioner.imagenet_head
    images = load_split("train", data, limit)
    captions = load_captions(data)
    flickr = labelled_flickr(captioner, images, captions, data, cache_dir, progress)
    sources = labelled_sources(captioner, data, labels_file, limit, exclude_near or [])
    select = labelled_select(captioner, data, labels_file, limit)
    dogs = caption_labels(captions, images, {DOG_GATE: DOG_WORDS})[DOG_GATE] == 1
    detectors = {DOG_GATE: dog_gate(flickr.features[dogs.to_numpy()], head)}
    if DEGRADED_COPIES:
        flickr = with_degraded_copies(captioner, flickr, cache_dir)
        sources = with_degraded_copies(captioner, sources, cache_dir)
    fits = {
        concept: fit_concept(concept, *training_photos(concept, flickr, sources), select, head)
        for concept in CONCEPTS
    }
    grounding = Grounding(*head, detectors | thresholded(fits, sources, select, BUDGETS))
    level = grain_level(captioner, flickr.paths[:GRAIN_REFERENCE])
    return with_grainy_thresholds(grounding, captioner, select, level, BUDGETS)


def grain_level(captioner: Captioner, clean_paths: Sequence[Path]) -> float:
    """The largest grain σ̂ among clean in-domain photos: from it, a photo counts as grainy
    (a clean Flickr8k photo never does)."""
    return float(grain_photos(captioner, clean_paths).max())


def grain_photos(captioner: Captioner, paths: Sequence[Path], degraded: bool = False) -> np.ndarray:
    """(N,) grain σ̂ of image files, or of their degraded copies."""

    def grain(path: Path) -> float:
        image = load_image(path)
        return captioner.grain_of([degraded_copy(image, path.name) if degraded else image])[0]

    return np.array([grain(path) for path in paths])


def with_grainy_thresholds(grounding: Grounding, captioner: Captioner, select: LabelledPhotos,
                           level: float, budgets: dict[str, float]) -> Grounding:  # fmt: skip
    """The grounding with a grainy threshold for each GRAINY detector: the higher of its
    threshold and the lowest with at most its budget of false positives among the select
    half's photos, as they are and as degraded copies, whose σ̂ reaches `level`. The clean
    thresholds were set on photos as they are, and grain raises the scores of photos without
    the concept (animals above all)."""
    copy_grids, copy_lite0 = degraded_grids(captioner, select.paths, select.lite0 is not None)
    versions = [
        (select.regions, select.lite0, grain_photos(captioner, select.paths)),
        (copy_grids, copy_lite0, grain_photos(captioner, select.paths, degraded=True)),
    ]
    probabilities, grainy = [], []
    for grids, lite0, grain in versions:
        evidence = grounding.evidence(np.asarray(grids, np.float32), lite0)
        probabilities.append(pd.DataFrame([e.probabilities for e in evidence]))
        grainy.append(grain >= level)
    p, grainy = pd.concat(probabilities, ignore_index=True), np.concatenate(grainy)
    detectors = dict(grounding.detectors)
    for concept in GRAINY:
        negative = np.tile(select.labels[concept].to_numpy() == 0, len(versions))
        lowest = lowest_threshold(p[concept].to_numpy()[grainy & negative], budgets[concept])
        detector = detectors[concept]
        detectors[concept] = replace(detector, grainy_threshold=max(detector.threshold, lowest))
    return Grounding(grounding.kernel, grounding.bias, detectors, level)


def training_photos(
    concept: str,
    flickr: LabelledPhotos,
    sources: LabelledPhotos,
    degraded: frozenset[str] = DEGRADED_COPIES,
) -> tuple[LabelledPhotos, LabelledPhotos]:
    """The photos `concept`'s detector trains on: with their degraded copies if it is one of
    `degraded`, as they are otherwise."""
    if concept in degraded:
        return flickr, sources
    return replace(flickr, copies=None), replace(sources, copies=None)


def labelled_flickr(captioner: Captioner, images: list[str], captions: pd.DataFrame, data: Path,
                    cache_dir: Path | None = None, progress: bool = False,
                    lite0: bool = NEEDS_LITE0) -> LabelledPhotos:  # fmt: skip
    """Flickr8k photos with their caption labels, their grids from the feature cache (memory-
    mapped) and their Lite0 grids where a detector reads them."""
    grids = build_feature_cache(images, cache_dir, data, progress=progress).grids
    paths = [data / FLICKR / "images" / name for name in images]
    return LabelledPhotos(
        pooled_features(grids),
        caption_labels(captions, images),
        lite0_photos(captioner, paths) if lite0 else None,
        grids,
        paths,
    )


def thresholded(fits: dict[str, ConceptFit], sources: LabelledPhotos, select: LabelledPhotos,
                budgets: dict[str, float]) -> dict[str, Detector]:  # fmt: skip
    """Each fitted detector with its threshold at its false-positive budget (on the select
    half's and the sources' photos as they are; degraded copies are never held out)."""
    return {
        concept: replace(
            fit.detector,
            threshold=operating_threshold(
                fit.p_select[select.labels[concept].to_numpy() == 0],
                fit.p_sources[sources.labels[concept].to_numpy() == 0],
                budgets[concept],
            ),
        )
        for concept, fit in fits.items()
    }


def dog_gate(dog_photos: np.ndarray, head: tuple[np.ndarray, np.ndarray]) -> Detector:
    """ImageNet's dog-breed mass as a detector (probability = mass), its threshold the mass
    that DOG_KEPT of the Flickr8k photos whose captions name a dog reach: set in domain, so
    that it only vetoes "dog" where ImageNet sees none (reports/captioning_experiments.md)."""
    if not len(dog_photos):
        raise ValueError("no Flickr8k train photo whose captions name a dog: raise --limit")
    mass = np.sort(dog_mass(dog_photos, head))
    threshold = float(mass[int(np.floor((1 - DOG_KEPT) * len(mass)))])
    zero, one = np.zeros(1, np.float32), np.ones(1, np.float32)
    return Detector(zero, one, one, 0.0, threshold, reads=DOG_MASS)


def dog_mass(features: np.ndarray, head: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """ImageNet's probability summed over its dog breeds, from pooled grids."""
    return dog_breed_mass(imagenet_probabilities(features, head))


def imagenet_probabilities(features: np.ndarray, head: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The backbone's ImageNet head on region features (their mean comes first)."""
    kernel, bias = head
    return softmax(features[:, : len(kernel)] @ kernel + bias, axis=-1)


@dataclass
class LabelledPhotos:
    """Photos' pooled MobileNetV2 features (`region_features`), their labels per concept, their
    Lite0 grids (float16) where a detector reads them, their MobileNetV2 grids (float16,
    possibly memory-mapped) where a detector reads the regions, and their degraded copies
    where the fits train on those too."""

    features: np.ndarray
    labels: pd.DataFrame
    lite0: np.ndarray | None = None
    regions: np.ndarray | None = None
    paths: list[Path] | None = None  # the image files, where degraded copies may be made
    copies: LabelledPhotos | None = None  # the same photos degraded, row for row


def labelled_sources(
    captioner: Captioner,
    data: Path,
    labels_file: Path,
    limit: int | None,
    exclude_near: list[Path],
    lite0: bool = NEEDS_LITE0,
) -> LabelledPhotos:
    """The doctype source photos with their weak labels, without the hand-labelled photos
    and without near copies of `exclude_near`."""
    photos = source_photos(data, set(pd.read_csv(labels_file)["path"]), limit)
    paths = [data / p for p in photos["path"]]
    grids = grid_photos(captioner, paths)
    kept = np.ones(len(paths), dtype=bool)
    if exclude_near:
        kept = not_near(pooled(grids), pooled_photos(captioner, exclude_near))
    kept_paths = [p for p, keep in zip(paths, kept, strict=True) if keep]
    return LabelledPhotos(
        pooled(grids[kept]),
        photos[kept].reset_index(drop=True),
        lite0_photos(captioner, kept_paths) if lite0 else None,
        grids[kept],
        kept_paths,
    )


def labelled_select(
    captioner: Captioner,
    data: Path,
    labels_file: Path,
    limit: int | None = None,
    lite0: bool = NEEDS_LITE0,
) -> LabelledPhotos:
    """The select half of the hand-labelled set (a tf_flowers photo shows flowers); `limit`
    keeps that many photos of each combination of concepts, for smoke tests."""
    select = load_labelled("select", labels_file)
    select = select.assign(flower=select["source"].isin(FLOWER_SOURCES).astype(int))
    if limit:
        select = select.groupby(list(CONCEPTS)).head(limit).reset_index(drop=True)
    paths = [data / p for p in select["path"]]
    grids = grid_photos(captioner, paths)
    return LabelledPhotos(
        pooled(grids), select, lite0_photos(captioner, paths) if lite0 else None, grids, paths
    )


@dataclass
class ConceptFit:
    """One detector, its regularisation chosen by select ROC-AUC, and what sets its threshold."""

    detector: Detector  # threshold not set yet
    c: float  # the regularisation chosen: C, or a MIL detector's L2 weight
    select_auc: float
    p_select: np.ndarray  # the select half's photos
    p_sources: np.ndarray  # the doctype source photos, out of fold
    p_flickr: np.ndarray  # the Flickr8k photos whose captions agree, out of fold
    known: np.ndarray  # which Flickr8k photos those are (captions agree on the concept)


def fit_concept(
    concept: str,
    flickr: LabelledPhotos,
    sources: LabelledPhotos,
    select: LabelledPhotos,
    head: tuple[np.ndarray, np.ndarray],
    reads: str | None = None,
    recipe: mil.Recipe = mil.SHIPPED,
) -> ConceptFit:
    """Fit `concept`'s detector on Flickr8k (caption labels) and the sources (weak labels),
    reading what `reads` says (DETECTOR_READS by default); its regularisation (C, or a MIL
    detector's L2 weight and sharpness) is chosen by select ROC-AUC."""
    reads = reads or DETECTOR_READS[concept]
    known, y = training_labels(concept, flickr, sources)
    truth = select.labels[concept].to_numpy()
    if reads in REGION_READS:
        return fit_regions(known, y, flickr, sources, select, truth, recipe, reads)

    features, copies = training_rows(lambda p, rows: p.features[rows], flickr, sources, known)
    lite0 = None
    if reads != MOBILENET:
        lite0, _ = training_rows(lambda p, rows: p.lite0[rows], flickr, sources, known)
    x = detector_features(concept, features, head, lite0, reads)  # all rows at once, as shipped
    trained = np.tile(y, 2) if copies else y
    x_select = detector_features(concept, select.features, head, select.lite0, reads)
    fits = [replace(fit_logistic(x, trained, c), reads=reads) for c in REGULARISATION]
    aucs = [roc_auc_score(truth, d.probability(x_select)) for d in fits]
    best = int(np.argmax(aucs))  # the regularisation that ranks select best
    oof = out_of_fold(x, y, REGULARISATION[best], copies)
    return ConceptFit(
        fits[best],
        REGULARISATION[best],
        aucs[best],
        fits[best].probability(x_select),
        oof[int(known.sum()) :],
        oof[: int(known.sum())],
        known,
    )


def training_rows(
    take: Callable[[LabelledPhotos, np.ndarray | slice], np.ndarray],
    flickr: LabelledPhotos,
    sources: LabelledPhotos,
    known: np.ndarray,
) -> tuple[np.ndarray, bool]:
    """What `take` reads of the training photos (Flickr8k's `known` rows, then the sources),
    followed by the same of their degraded copies where they have them; and whether they do."""
    parts = [(flickr, known), (sources, slice(None))]
    copies = flickr.copies is not None and sources.copies is not None
    if copies:
        parts += [(flickr.copies, known), (sources.copies, slice(None))]
    return np.concatenate([take(photos, rows) for photos, rows in parts]), copies


def training_labels(
    concept: str, flickr: LabelledPhotos, sources: LabelledPhotos
) -> tuple[np.ndarray, np.ndarray]:
    """Which Flickr8k photos' captions agree on `concept`, and the labels of those photos
    followed by the sources' weak labels."""
    known = flickr.labels[concept].notna().to_numpy()
    labels = [flickr.labels[concept].to_numpy()[known], sources.labels[concept].to_numpy()]
    return known, np.concatenate(labels)


def fit_regions(known: np.ndarray, y: np.ndarray, flickr: LabelledPhotos, sources: LabelledPhotos,
                select: LabelledPhotos, truth: np.ndarray, recipe: mil.Recipe = mil.SHIPPED,
                reads: str = REGIONS) -> ConceptFit:  # fmt: skip
    """A multiple-instance detector on the regions `reads` names (`scancap.caption.mil`): its
    L2 weight and sharpness chosen by select ROC-AUC, as C is for the logistic regressions."""
    grids, copies = training_rows(
        lambda photos, rows: photo_regions(photos, reads, rows), flickr, sources, known
    )
    trained = np.tile(y, 2) if copies else y
    regions_select = np.asarray(photo_regions(select, reads), np.float32)
    moments = mil.region_moments(grids)
    settings = [(l2, s) for l2 in recipe.l2_weights for s in recipe.sharpness]
    models = mil.fit_models(grids, trained, settings, moments, SEED, recipe, stream=copies)
    fits = {
        setting: replace(mil.as_detector(model, *moments), reads=reads)
        for setting, model in zip(settings, models, strict=True)
    }
    aucs = {key: roc_auc_score(truth, d.probability(regions_select)) for key, d in fits.items()}
    best = max(aucs, key=aucs.get)
    oof = mil.out_of_fold(grids, y, *best, FOLDS, SEED, recipe, copies)
    n = int(known.sum())
    detector = fits[best]
    return ConceptFit(
        detector, best[0], aucs[best], detector.probability(regions_select), oof[n:], oof[:n], known
    )


def photo_regions(
    photos: LabelledPhotos, reads: str, rows: np.ndarray | slice = slice(None)
) -> np.ndarray:
    """The (N, 49, width) float16 regions a detector reading `reads` scores (of `rows` only):
    MobileNetV2's, or each region's MobileNetV2 and Lite0 features side by side."""
    if reads == REGIONS:
        return photos.regions[rows]
    return np.concatenate([photos.regions[rows], photos.lite0[rows]], axis=-1)
