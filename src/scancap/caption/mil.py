"""A presence detector that looks at regions: multiple-instance learning (MIL) on the grid.

A detector reading the mean of the 49 regions averages a small subject away (a climber on a
cliff fills two regions). This one scores every region linearly, on standardised features, and
pools the 49 scores by a soft maximum (log-sum-exp), trained on image labels alone: it learns
which region shows the subject. At caption time it is a `grounding.Detector` reading regions
(REGIONS, or BOTH_REGIONS: each region through two backbones, as shipped): 49 dot products per
photo. Chosen by the tenth and twelfth changes' rules (`reports/grounding_mil.md`,
`reports/grounding_mil_lite0.md`).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from sklearn.model_selection import StratifiedKFold

from scancap.caption.grounding import REGIONS, Detector

BATCH_SIZE = 64
CHUNK = 256  # photos at a time when standardising (grids may be memory-mapped)


@dataclass(frozen=True)
class Recipe:
    """How a MIL detector is trained, and the settings select ROC-AUC chooses among."""

    epochs: int = 8
    initializer: str = "glorot_uniform"  # of the region score's weights
    l2_weights: tuple[float, ...] = (1e-4, 1e-3, 1e-2)
    sharpness: tuple[float, ...] = (1.0, 4.0)


SHIPPED = Recipe()  # the tenth change's (reports/grounding_mil.md)


@keras.saving.register_keras_serializable(package="scancap")
class SoftMaximum(keras.layers.Layer):
    """Log-sum-exp pooling of region scores: their mean as sharpness nears 0, their maximum as
    it grows (`grounding.soft_maximum` computes the same at caption time)."""

    def __init__(self, sharpness: float, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sharpness = sharpness

    def call(self, scores: keras.KerasTensor) -> keras.KerasTensor:
        scores = keras.ops.squeeze(scores, axis=-1)
        regions = keras.ops.cast(keras.ops.shape(scores)[1], scores.dtype)
        pooled = keras.ops.logsumexp(self.sharpness * scores, axis=1) - keras.ops.log(regions)
        return keras.ops.expand_dims(pooled / self.sharpness, -1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], 1)

    def get_config(self) -> dict:
        return super().get_config() | {"sharpness": self.sharpness}


def mil_model(l2: float, sharpness: float, regions: int = 49, dim: int = 1280,
              initializer: str = SHIPPED.initializer) -> keras.Model:  # fmt: skip
    """Standardised regions -> one linear score each -> soft maximum: the photo's logit."""
    inputs = keras.Input((regions, dim), name="regions")
    scores = keras.layers.Dense(
        1,
        kernel_initializer=initializer,
        kernel_regularizer=keras.regularizers.L2(l2),
        name="region_score",
    )(inputs)
    model = keras.Model(inputs, SoftMaximum(sharpness, name="soft_maximum")(scores))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return model


def region_moments(
    grids: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every region of the grids' `rows` (all by
    default), a chunk of photos at a time."""
    rows = np.arange(len(grids)) if rows is None else np.sort(rows)
    total, squares, count = 0.0, 0.0, 0
    for i in range(0, len(rows), CHUNK):
        chunk = np.asarray(grids[rows[i : i + CHUNK]], np.float64).reshape(-1, grids.shape[-1])
        total = total + chunk.sum(axis=0)
        squares = squares + (chunk**2).sum(axis=0)
        count += len(chunk)
    mean = total / count
    scale = np.sqrt(np.maximum(squares / count - mean**2, 0.0)) + 1e-6
    return mean.astype(np.float32), scale.astype(np.float32)


def standardised(
    grids: np.ndarray, mean: np.ndarray, scale: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """(N, 49, dim) float32 standardised regions of the grids' `rows` (all by default), a
    chunk at a time."""
    rows = np.arange(len(grids)) if rows is None else rows
    out = np.empty((len(rows), *grids.shape[1:]), np.float32)
    for i in range(0, len(rows), CHUNK):
        chunk = np.asarray(grids[rows[i : i + CHUNK]], np.float32)
        out[i : i + CHUNK] = (chunk - mean) / scale
    return out


class StandardisedBatches(keras.utils.PyDataset):
    """Shuffled batches of standardised float32 regions of the grids' `rows`, made one batch at
    a time from the (float16, possibly memory-mapped) grids, which are never copied: with
    degraded copies, the training set standardised in float32 beside Keras's copy of it, or a
    copy per fold, ran out of 24 GB."""

    def __init__(self, grids: np.ndarray, rows: np.ndarray, labels: np.ndarray,
                 weights: np.ndarray, moments: tuple[np.ndarray, np.ndarray],
                 seed: int) -> None:  # fmt: skip
        super().__init__()
        self.grids, self.rows, self.moments = grids, rows, moments
        self.labels, self.weights = labels.astype(np.float32), weights
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(rows))

    def __len__(self) -> int:
        return -(-len(self.rows) // BATCH_SIZE)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chosen = np.sort(self.order[index * BATCH_SIZE : (index + 1) * BATCH_SIZE])
        regions = standardised(self.grids, *self.moments, self.rows[chosen])
        return regions, self.labels[chosen], self.weights[chosen]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.rows))


def fit_mil(regions: np.ndarray, labels: np.ndarray, l2: float, sharpness: float,
            seed: int = 0, recipe: Recipe = SHIPPED) -> keras.Model:  # fmt: skip
    """A MIL model on standardised regions in memory, both classes weighing the same in the
    loss (Keras shuffles the array: how the shipped detectors were fit)."""
    keras.utils.set_random_seed(seed)
    model = mil_model(l2, sharpness, *regions.shape[1:], initializer=recipe.initializer)
    positives = float(np.mean(labels))
    weights = {0: 0.5 / (1 - positives), 1: 0.5 / positives}
    model.fit(
        regions,
        labels,
        batch_size=BATCH_SIZE,
        epochs=recipe.epochs,
        class_weight=weights,
        verbose=0,
    )
    return model


def fit_mil_streamed(grids: np.ndarray, labels: np.ndarray, l2: float, sharpness: float,
                     moments: tuple[np.ndarray, np.ndarray], seed: int = 0,
                     recipe: Recipe = SHIPPED,
                     rows: np.ndarray | None = None) -> keras.Model:  # fmt: skip
    """`fit_mil` on the regions of the grids' `rows` (all by default; `labels` are theirs),
    standardised by `moments` (mean, scale) one batch at a time (`StandardisedBatches`)."""
    keras.utils.set_random_seed(seed)
    rows = np.arange(len(grids)) if rows is None else rows
    model = mil_model(l2, sharpness, *grids.shape[1:], initializer=recipe.initializer)
    positives = float(np.mean(labels))
    weights = np.where(labels == 1, 0.5 / positives, 0.5 / (1 - positives)).astype(np.float32)
    model.fit(
        StandardisedBatches(grids, rows, labels, weights, moments, seed),
        epochs=recipe.epochs,
        verbose=0,
    )
    return model


def fit_models(grids: np.ndarray, labels: np.ndarray, settings: list[tuple[float, float]],
               moments: tuple[np.ndarray, np.ndarray], seed: int = 0, recipe: Recipe = SHIPPED,
               rows: np.ndarray | None = None,
               stream: bool = False) -> list[keras.Model]:  # fmt: skip
    """One MIL model per (L2 weight, sharpness) setting on the grids' `rows`: standardised once
    in memory, or with `stream` a batch at a time (degraded copies make the set too large to
    hold in float32 beside Keras's copy of it)."""
    if stream:
        return [
            fit_mil_streamed(grids, labels, l2, sharpness, moments, seed, recipe, rows)
            for l2, sharpness in settings
        ]
    regions = standardised(grids, *moments, rows)
    return [fit_mil(regions, labels, l2, sharpness, seed, recipe) for l2, sharpness in settings]


def as_detector(model: keras.Model, mean: np.ndarray, scale: np.ndarray) -> Detector:
    """The trained model as a NumPy detector reading REGIONS (threshold set later; a detector on
    both backbones' regions says BOTH_REGIONS instead)."""
    kernel, bias = model.get_layer("region_score").get_weights()
    sharpness = model.get_layer("soft_maximum").sharpness
    return Detector(mean, scale, kernel[:, 0], float(bias[0]), 0.5, REGIONS, sharpness)


def fit_detector(grids: np.ndarray, labels: np.ndarray, l2: float, sharpness: float,
                 seed: int = 0, recipe: Recipe = SHIPPED, rows: np.ndarray | None = None,
                 stream: bool = False) -> Detector:  # fmt: skip
    """A MIL detector on the (N, 49, dim) grids' `rows` (all by default; `labels` are theirs),
    standardised by those rows' own region moments (`fit_models` says what `stream` does)."""
    moments = region_moments(grids, rows)
    model = fit_models(grids, labels, [(l2, sharpness)], moments, seed, recipe, rows, stream)[0]
    return as_detector(model, *moments)


def fold_splits(labels: np.ndarray, folds: int, seed: int = 0,
                copies: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Stratified splits of the photos whose labels these are, shuffled by `seed` (as
    `train_grounding.out_of_fold` splits). With `copies` (training rows n..2n-1 are the degraded
    copies of rows 0..n-1, in order), a copy trains with its photo and is never held out: no
    photo is scored by a detector that saw its copy."""
    n = len(labels)
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), labels)
    return [(np.concatenate([fit, fit + n]) if copies else fit, held) for fit, held in splits]


def out_of_fold(grids: np.ndarray, labels: np.ndarray, l2: float, sharpness: float,
                folds: int, seed: int = 0, recipe: Recipe = SHIPPED,
                copies: bool = False) -> np.ndarray:  # fmt: skip
    """Each photo's probability from the detector fit on the other folds (`fold_splits`; with
    `copies`, `grids` holds the photos then their degraded copies, and only photos are scored)."""
    trained = np.tile(labels, 2) if copies else labels
    p = np.zeros(len(labels))
    for fit, held in fold_splits(labels, folds, seed, copies):
        detector = fit_detector(
            grids, trained[fit], l2, sharpness, seed, recipe, rows=fit, stream=copies
        )
        p[held] = detector.probability(np.asarray(grids[held], np.float32))
    return p
