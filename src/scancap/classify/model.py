"""Photo or not: the classifier's networks, its calibration and the prediction API.

The shipped classifier is the frozen ImageNet EfficientNet-Lite0 (models/
efficientnet_lite0_imagenet.npz) followed by a small trained part, saved alone in
models/classifier/. The head reads three frozen outputs of one backbone pass: the pooled
7x7x1280 grid (what the image shows), the per-channel mean and standard deviation of block 10's
14x14x112 grid, and the same statistics of five more layers from the stem to block 14 (texture:
brush strokes, paper, print screens, film grain; reports/classification.md and
classification_experiments.md, v6 and v11, measure what they add). "transfer" keeps blocks
11-15 frozen; "finetuned" trains copies of them. Lite0 won over the MobileNetV2 the captioner
reads on val (reports/classification_experiments.md), so the classifier has its own backbone
pass.

Both kinds have two outputs: a photo logit, turned into a calibrated p(photo) by temperature
scaling fitted on val, and five subtype logits, which route non-photos.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import keras
import numpy as np
from keras import layers, regularizers
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit, softmax

from scancap.backbones.efficientnet_lite import FEATURE_LAYER, TRUNK_LAYER, load_lite0
from scancap.backbones.inputs import to_model_input
from scancap.batch import load_batches
from scancap.classify.adapt import Adaptation
from scancap.classify.data import (
    LABELS,
    PHOTO,
    TEXTURE_DIM,
    ChannelStats,
    feature_model,
    head_inputs,
)
from scancap.io import DEFAULT_MAX_PIXELS, ImageLoadError
from scancap.pages import Page
from scancap.paths import models_dir

IMAGE_SIZE = 224
POOLED_DIM = 1280
TOP_REGIONS = 49  # the top grid's 7x7 regions at IMAGE_SIZE
TRUNK_SHAPE = (14, 14, 112)  # TRUNK_LAYER's output at 224 px
TARGET_PRECISION = 0.99
REVIEW_ACCURACY = 0.995  # the decisions outside the review band, on val
MIN_THRESHOLD = 0.5  # below it a "photo" would be likelier a non-photo than not, at val's priors
MODEL_FILE = "classifier.keras"
CALIBRATION_FILE = "calibration.json"


def default_dir() -> Path:
    return models_dir() / "classifier"


# --- networks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadConfig:
    """The head's regularisation knobs, varied by the ablations in the report."""

    hidden: int = 256
    dropout: float = 0.3
    l2: float = 1e-4


def head_outputs(x: keras.KerasTensor, config: HeadConfig) -> list[keras.KerasTensor]:
    """Dropout, a shared hidden layer, then the photo logit and the 5 subtype logits."""
    regulariser = regularizers.L2(config.l2) if config.l2 else None
    x = layers.Dropout(config.dropout, name="head_dropout_in")(x)
    if config.hidden:
        x = layers.Dense(
            config.hidden, activation="relu", kernel_regularizer=regulariser, name="head_hidden"
        )(x)
        x = layers.Dropout(config.dropout, name="head_dropout")(x)
    photo = layers.Dense(1, kernel_regularizer=regulariser, name="photo")(x)
    subtype = layers.Dense(len(LABELS), kernel_regularizer=regulariser, name="subtype")(x)
    return [photo, subtype]


def _with_texture(
    trunk: keras.KerasTensor, pooled: keras.KerasTensor, texture: keras.KerasTensor
) -> keras.KerasTensor:
    """Pooled top features joined by standardised texture statistics: the trunk's, then those
    of the other texture layers (`flat_features`' order)."""
    stats = layers.Concatenate(name="texture_stats")(
        [ChannelStats(name="trunk_stats")(trunk), texture]
    )
    stats = layers.Normalization(name="trunk_stats_norm")(stats)  # adapted on train
    return layers.Concatenate(name="features")([pooled, stats])


def build_head(config: HeadConfig = HeadConfig()) -> keras.Model:
    """The transfer model's trainable part: (frozen trunk grid, pooled grid, texture
    statistics) -> two outputs."""
    trunk = keras.Input(TRUNK_SHAPE, name="trunk_features")
    pooled = keras.Input((POOLED_DIM,), name="pooled_features")
    texture = keras.Input((TEXTURE_DIM,), name="texture_features")
    outputs = head_outputs(_with_texture(trunk, pooled, texture), config)
    return keras.Model([trunk, pooled, texture], outputs, name="transfer_head")


def build_ensemble(members: Sequence[keras.Model]) -> keras.Model:
    """Heads trained from different seeds, averaging their logits (same inputs as each head).

    Seeds disagree most on borderline images, which are the ones that set a 99%-precision
    threshold; the average ranks them more steadily than any one head.
    """
    if len(members) == 1:
        return members[0]
    inputs = [keras.Input(x.shape[1:], name=x.name) for x in members[0].inputs]
    outputs = []
    for i, member in enumerate(members):
        member.name = f"member_{i}"
        outputs.append(member(inputs))
    photo = layers.Average(name="photo")([o[0] for o in outputs])
    subtype = layers.Average(name="subtype")([o[1] for o in outputs])
    return keras.Model(inputs, [photo, subtype], name="transfer_ensemble")


def adapt_texture(
    model: keras.Model, trunk: np.ndarray, texture: np.ndarray, chunk: int = 2048
) -> None:
    """Fit the texture statistics' standardisation on the training views' trunk grids and
    texture statistics."""
    layer = model.get_layer("trunk_stats")
    stats = np.concatenate(
        [
            keras.ops.convert_to_numpy(layer(np.asarray(trunk[i : i + chunk], np.float32)))
            for i in range(0, len(trunk), chunk)
        ]
    )
    model.get_layer("trunk_stats_norm").adapt(np.hstack([stats, texture]))


def build_top(backbone: keras.Model, config: HeadConfig = HeadConfig()) -> keras.Model:
    """The fine-tuned model's trainable part: frozen-trunk grid -> blocks 11-15 -> two outputs.

    The blocks are the backbone's own layers (so they start from ImageNet weights); pass a
    freshly loaded backbone, since training changes them. BatchNorm stays frozen, in inference
    mode, as keras.io's fine-tuning guide advises for small data sets.
    """
    blocks = keras.Model(
        backbone.get_layer(TRUNK_LAYER).output,
        backbone.get_layer(FEATURE_LAYER).output,
        name="top_blocks",
    )
    for layer in blocks.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    trunk = keras.Input(TRUNK_SHAPE, name="trunk_features")
    texture = keras.Input((TEXTURE_DIM,), name="texture_features")
    pooled = layers.GlobalAveragePooling2D(name="pool")(blocks(trunk))
    return keras.Model(
        [trunk, texture],
        head_outputs(_with_texture(trunk, pooled, texture), config),
        name="finetuned_top",
    )


def build_baseline(size: int = IMAGE_SIZE) -> keras.Model:
    """The original notebook's small CNN from scratch: 3 conv/pool stages, Dense 128, dropout.

    Its two outputs are the photo logit (the product decision) and, like the other models,
    the subtype logits.
    """
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{filters}")(x)
        x = layers.MaxPooling2D(name=f"pool{filters}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense128")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    photo = layers.Dense(1, name="photo")(x)
    subtype = layers.Dense(len(LABELS), name="subtype")(x)
    return keras.Model(inputs, [photo, subtype], name="baseline_cnn")


def compile_two_outputs(model: keras.Model, learning_rate: float) -> keras.Model:
    """Binary cross-entropy on the photo logit plus cross-entropy on the subtype, Adam."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={
            "photo": keras.losses.BinaryCrossentropy(from_logits=True),
            "subtype": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        metrics={
            "photo": [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
            "subtype": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        },
        jit_compile=False,
    )
    return model


def targets(labels: np.ndarray) -> list[np.ndarray]:
    """Keras targets for the two outputs (photo, subtype), in output order, from subtype indices."""
    labels = np.asarray(labels)
    return [(labels == PHOTO).astype(np.float32)[:, None], labels]


# --- calibration and threshold --------------------------------------------------------------------


def fit_temperature(logits: np.ndarray, is_photo: np.ndarray) -> float:
    """The T minimising val log-loss of sigmoid(logit / T): fixes over-confidence, not ranking."""
    logits = np.asarray(logits, np.float64)
    is_photo = np.asarray(is_photo, bool)

    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        return float(np.mean(np.logaddexp(0, z) - z * is_photo))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(50.0)), method="bounded")
    return float(np.exp(result.x))


def choose_threshold(
    p_photo: np.ndarray, is_photo: np.ndarray, target: float = TARGET_PRECISION
) -> float:
    """The lowest threshold (most photos found) whose val precision on photo is >= target.

    Never below MIN_THRESHOLD; if no threshold reaches the target, the highest score is used,
    so that almost nothing is called a photo rather than sending non-photos to captioning.
    """
    p_photo = np.asarray(p_photo, np.float64)
    is_photo = np.asarray(is_photo, bool)
    order = np.argsort(-p_photo, kind="stable")
    scores, hits = p_photo[order], is_photo[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    last = np.append(scores[1:] != scores[:-1], True)  # a threshold keeps all tied scores
    ok = np.flatnonzero(last & (precision >= target) & (scores >= MIN_THRESHOLD))
    if not len(ok):
        return float(scores[0]) if len(scores) else 1.0
    return float(scores[ok[-1]])


@dataclass(frozen=True)
class Calibration:
    """What turns the photo logit into a decision; stored in calibration.json, overridable.

    `review_band`: a decision whose calibrated logit lies within this distance of the
    threshold's is worth a person's look (`needs_review`); set on val, where the decisions
    outside it are at least 99.5% right (reports/classification.md, "Adaptation").
    """

    temperature: float
    threshold: float
    target_precision: float = TARGET_PRECISION
    review_band: float | None = None

    def p_photo(self, logits: np.ndarray) -> np.ndarray:
        return expit(np.asarray(logits, np.float64) / self.temperature)

    @property
    def threshold_logit(self) -> float:
        """The threshold as a calibrated logit, from which margins are counted."""
        return float(logit(np.clip(self.threshold, 1e-12, 1 - 1e-12)))

    def margins(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated logits minus the threshold's: positive for a photo."""
        return np.asarray(logits, np.float64) / self.temperature - self.threshold_logit

    def margins_of(self, p_photo: np.ndarray | float) -> np.ndarray:
        """The margins of calibrated probabilities (as `scancap classify` writes them)."""
        p = np.clip(np.asarray(p_photo, np.float64), 1e-12, 1 - 1e-12)
        return logit(p) - self.threshold_logit

    def needs_review(self, logits: np.ndarray) -> np.ndarray:
        """Which decisions lie inside the review band (none without a band)."""
        if self.review_band is None:
            return np.zeros(np.shape(logits), bool)
        return np.abs(self.margins(logits)) <= self.review_band

    @classmethod
    def fit(cls, logits: np.ndarray, is_photo: np.ndarray) -> Calibration:
        temperature = fit_temperature(logits, is_photo)
        p_photo = expit(np.asarray(logits, np.float64) / temperature)
        fitted = cls(temperature, choose_threshold(p_photo, is_photo))
        return replace(fitted, review_band=fitted.band_on(logits, is_photo))

    def band_on(
        self, logits: np.ndarray, is_photo: np.ndarray, accuracy: float = REVIEW_ACCURACY
    ) -> float:
        """The smallest margin b such that the decisions with |margin| > b are at least
        `accuracy` right on these (val) images: inside it, a person's look is worth asking."""
        margins = self.margins(logits)
        right = (margins >= 0) == np.asarray(is_photo, bool)
        order = np.argsort(-np.abs(margins), kind="stable")  # most confident first
        sure, kept = np.abs(margins)[order], right[order]
        share = np.cumsum(kept) / np.arange(1, len(kept) + 1)
        held = np.flatnonzero(share >= accuracy)  # the most confident i + 1 hold it
        if not len(held):
            return float(sure[0])  # nothing is sure enough: every decision is worth a look
        last = int(held[-1])
        return 0.0 if last == len(sure) - 1 else float(sure[last + 1])


# --- prediction -----------------------------------------------------------------------------------


def pooled_features(features: Sequence[np.ndarray]) -> np.ndarray:
    """The (n, 1280) pooled top grid among the frozen part's outputs (the grid, or already
    pooled): what the review queue and the adaptation compare items by."""
    top = np.asarray(features[1], np.float32)
    return top.mean(axis=(1, 2)) if top.ndim == 4 else top


@dataclass(frozen=True)
class Prediction:
    """One image's verdict; `subtype` is "photo" iff is_photo, else the likeliest other label."""

    p_photo: float
    is_photo: bool
    subtype: str
    subtype_probabilities: dict[str, float]
    needs_review: bool = False


def decide(
    photo_logits: np.ndarray, subtype_logits: np.ndarray, calibration: Calibration
) -> list[Prediction]:
    """Predictions from raw logits: calibrated p(photo), threshold, and routed subtype."""
    p_photo = calibration.p_photo(np.ravel(photo_logits))
    review = calibration.needs_review(np.ravel(photo_logits))
    probabilities = softmax(np.asarray(subtype_logits, np.float64), axis=-1)
    routed = probabilities.copy()
    routed[:, PHOTO] = -1.0  # a non-photo is routed to its likeliest non-photo subtype
    predictions = []
    for p, probs, other, look in zip(
        p_photo, probabilities, routed.argmax(axis=1), review, strict=True
    ):
        is_photo = bool(p >= calibration.threshold)
        predictions.append(
            Prediction(
                float(p),
                is_photo,
                LABELS[PHOTO] if is_photo else LABELS[other],
                dict(zip(LABELS, map(float, probs), strict=True)),
                bool(look),
            )
        )
    return predictions


@cache
def frozen_features() -> keras.Model:
    """The frozen Lite0 feature extractor, built once per process and shared by every
    Classifier: building it and tracing its first batch take seconds, and nothing trains it
    (a fine-tuned classifier trains copies of its blocks)."""
    model = feature_model(load_lite0(), pool_top=False)
    # predict_on_batch runs a compiled graph: a quarter of the eager call's peak memory
    # (1.3 GB instead of 3.9 GB at batch 32) and faster; XLA is slower on this CPU.
    model.compile(jit_compile=False)
    return model


class Classifier:
    """The shipped classifier: frozen backbone part + the trained part + calibration."""

    def __init__(
        self,
        trained: keras.Model,
        calibration: Calibration,
        adaptation: Adaptation | None = None,
    ) -> None:
        self.trained = trained
        self.calibration = calibration
        self.adaptation = adaptation  # what a person's corrections taught it (`scancap adapt`)
        self.kind = "transfer" if len(trained.inputs) == 3 else "finetuned"
        self.trained.compile(jit_compile=False)
        # (trunk grid, top grid, texture statistics): the feature cache holds the same with the
        # top grid pooled; a fine-tuned top reads the first and the last, and the caption
        # grounding the top grid's regions.
        self.frozen = frozen_features()

    @classmethod
    def load(cls, folder: Path | None = None, threshold: float | None = None) -> Classifier:
        """Load models/classifier (or `folder`); `threshold` overrides the calibrated one."""
        folder = Path(folder or default_dir())
        path = folder / MODEL_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `scancap train classifier`")
        trained = keras.models.load_model(path, compile=False)
        calibration = Calibration(**json.loads((folder / CALIBRATION_FILE).read_text()))
        if threshold is not None:
            calibration = replace(calibration, threshold=threshold)
        return cls(trained, calibration, Adaptation.load(folder))

    def logits_from_features(
        self, features: Sequence[np.ndarray], chunk: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw (photo, subtype) logits from the frozen part's outputs (`features`): the trunk
        grid, the top grid (7x7x1280, or already pooled as (n, 1280)) and the texture
        statistics. A transfer head reads all three, a fine-tuned top the first and the last.
        """
        trunk, texture = (np.asarray(features[i], np.float32) for i in (0, 2))
        inputs = head_inputs(self.kind, trunk, pooled_features(features), texture)
        outputs = [
            self.trained.predict_on_batch([x[i : i + chunk] for x in inputs])
            for i in range(0, len(inputs[0]), chunk)
        ]
        photo, subtype = (np.concatenate([o[k] for o in outputs]) for k in (0, 1))
        return np.ravel(photo), subtype

    def predict_from_features(self, features: Sequence[np.ndarray]) -> list[Prediction]:
        """Predictions from the frozen part's outputs, computed now or read from a cache."""
        return decide(*self.adapted_logits(features), self.calibration)

    def adapted_logits(self, features: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """`logits_from_features`, moved by the adaptation where there is one: the photo
        logit by the propagated margin shift (in calibrated units), the subtype logits by
        theirs."""
        photo, subtype = self.logits_from_features(features)
        if self.adaptation is None:
            return photo, subtype
        margin_shift, subtype_shift = self.adaptation.shift(pooled_features(features))
        return photo + self.calibration.temperature * margin_shift, subtype + subtype_shift

    def features(self, batch: np.ndarray) -> list[np.ndarray]:
        """The frozen part's outputs for a (n, 224, 224, 3) batch in [0, 1]."""
        return self.frozen.predict_on_batch(batch)

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 32) -> list[Prediction]:
        """Predictions for uint8 RGB images of any size (stretched to 224, as in training)."""
        return self.predict_with_features(images, batch_size)[0]

    def predict_with_features(
        self, images: Sequence[np.ndarray], batch_size: int = 32
    ) -> tuple[list[Prediction], np.ndarray]:
        """`predict`, and the images' (N, 49, 1280) ImageNet Lite0 top grids, which the frozen
        part computes: the caption grounding reads them too, so the pipeline does not run
        Lite0 twice."""
        predictions: list[Prediction] = []
        grids: list[np.ndarray] = []
        for start in range(0, len(images), batch_size):
            batch = np.stack(
                [to_model_input(i, IMAGE_SIZE) for i in images[start : start + batch_size]]
            )
            features = self.features(batch)
            predictions += self.predict_from_features(features)
            top = np.asarray(features[1], np.float32)
            grids.append(top.reshape(len(top), -1, top.shape[-1]))
        empty = np.zeros((0, TOP_REGIONS, POOLED_DIM), np.float32)
        return predictions, np.concatenate(grids) if grids else empty

    def predict_files(
        self,
        pages: Sequence[Page | Path],
        batch_size: int = 32,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Iterator[tuple[Page | Path, Prediction | ImageLoadError]]:
        """(page, prediction or load error) per page or image file, in order; a bad file
        never stops it."""
        for batch in load_batches(pages, batch_size, max_pixels):
            images = [item for _, item in batch if isinstance(item, np.ndarray)]
            predictions = iter(self.predict(images, batch_size))
            for page, item in batch:
                yield page, next(predictions) if isinstance(item, np.ndarray) else item
