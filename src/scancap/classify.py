"""Photo or not: the classifier's networks, its calibration and the prediction API.

The shipped classifier is the frozen ImageNet backbone (models/mobilenet_v2_imagenet.keras)
followed by a small trained part, saved alone in models/classifier/: either a head on the pooled
7x7x1280 grid ("transfer") or fine-tuned copies of blocks 14-18 plus a head, fed by the frozen
trunk up to block 13 ("finetuned"). Either way the pipeline can run the shared frozen layers once
per image and hand their output to `Classifier.predict_from_features`.

Both kinds have two outputs: a photo logit, turned into a calibrated p(photo) by temperature
scaling fitted on val, and five subtype logits, which route non-photos.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers, regularizers
from scipy.optimize import minimize_scalar
from scipy.special import expit, softmax

from scancap.backbone import FEATURE_LAYER, load_backbone, to_model_input
from scancap.doctype import LABELS, PHOTO, TRUNK_LAYER
from scancap.io import DEFAULT_MAX_PIXELS, ImageLoadError, atomic_write_text, load_image
from scancap.paths import models_dir

IMAGE_SIZE = 224
POOLED_DIM = 1280
TARGET_PRECISION = 0.99
MIN_THRESHOLD = 0.5  # below it a "photo" would be likelier a non-photo than not, at val's priors
MODEL_FILE = "classifier.keras"
CALIBRATION_FILE = "calibration.json"
TOP_BLOCKS = tuple(range(14, 19))  # the 7x7 blocks that fine-tuning may change


def default_dir() -> Path:
    return models_dir() / "classifier"


# --- networks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadConfig:
    """The head's regularisation knobs, varied by the ablations in the report."""

    hidden: int = 256
    dropout: float = 0.3
    l2: float = 1e-4


def _outputs(x: keras.KerasTensor, config: HeadConfig) -> list[keras.KerasTensor]:
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


def build_head(config: HeadConfig = HeadConfig()) -> keras.Model:
    """The transfer model's trainable part: pooled backbone features -> two outputs."""
    inputs = keras.Input((POOLED_DIM,), name="pooled_features")
    return keras.Model(inputs, _outputs(inputs, config), name="transfer_head")


def build_top(backbone: keras.Model, config: HeadConfig = HeadConfig()) -> keras.Model:
    """The fine-tuned model's trainable part: frozen-trunk grid -> blocks 14-18 -> two outputs.

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
    inputs = keras.Input(blocks.input_shape[1:], name="trunk_features")
    x = layers.GlobalAveragePooling2D(name="pool")(blocks(inputs))
    return keras.Model(inputs, _outputs(x, config), name="finetuned_top")


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


def targets(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Keras targets for the two outputs from subtype indices."""
    labels = np.asarray(labels)
    return {"photo": (labels == PHOTO).astype(np.float32)[:, None], "subtype": labels}


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
    """What turns the photo logit into a decision; stored in calibration.json, overridable."""

    temperature: float
    threshold: float
    target_precision: float = TARGET_PRECISION

    def p_photo(self, logits: np.ndarray) -> np.ndarray:
        return expit(np.asarray(logits, np.float64) / self.temperature)

    @classmethod
    def fit(cls, logits: np.ndarray, is_photo: np.ndarray) -> Calibration:
        temperature = fit_temperature(logits, is_photo)
        p_photo = expit(np.asarray(logits, np.float64) / temperature)
        return cls(temperature, choose_threshold(p_photo, is_photo))


# --- prediction -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """One image's verdict; `subtype` is "photo" iff is_photo, else the likeliest other label."""

    p_photo: float
    is_photo: bool
    subtype: str
    subtype_probabilities: dict[str, float]


def decide(
    photo_logits: np.ndarray, subtype_logits: np.ndarray, calibration: Calibration
) -> list[Prediction]:
    """Predictions from raw logits: calibrated p(photo), threshold, and routed subtype."""
    p_photo = calibration.p_photo(np.ravel(photo_logits))
    probabilities = softmax(np.asarray(subtype_logits, np.float64), axis=-1)
    routed = probabilities.copy()
    routed[:, PHOTO] = -1.0  # a non-photo is routed to its likeliest non-photo subtype
    predictions = []
    for p, probs, other in zip(p_photo, probabilities, routed.argmax(axis=1), strict=True):
        is_photo = bool(p >= calibration.threshold)
        predictions.append(
            Prediction(
                float(p),
                is_photo,
                LABELS[PHOTO] if is_photo else LABELS[other],
                dict(zip(LABELS, map(float, probs), strict=True)),
            )
        )
    return predictions


class Classifier:
    """The shipped classifier: frozen backbone part + the trained part + calibration."""

    def __init__(
        self, trained: keras.Model, calibration: Calibration, backbone: keras.Model | None = None
    ) -> None:
        self.trained = trained
        self.calibration = calibration
        self.kind = "finetuned" if len(trained.input_shape) == 4 else "transfer"
        # The shared frozen layers whose output this classifier reads.
        self.features_layer = TRUNK_LAYER if self.kind == "finetuned" else FEATURE_LAYER
        backbone = backbone or load_backbone()
        self.frozen = keras.Model(
            backbone.input, backbone.get_layer(self.features_layer).output, name="frozen_part"
        )

    @classmethod
    def load(
        cls,
        folder: Path | None = None,
        threshold: float | None = None,
        backbone: keras.Model | None = None,
    ) -> Classifier:
        """Load models/classifier (or `folder`); `threshold` overrides the calibrated one."""
        folder = Path(folder or default_dir())
        path = folder / MODEL_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `scancap train classifier`")
        trained = keras.models.load_model(path, compile=False)
        calibration = Calibration(**json.loads((folder / CALIBRATION_FILE).read_text()))
        if threshold is not None:
            calibration = Calibration(
                calibration.temperature, threshold, calibration.target_precision
            )
        return cls(trained, calibration, backbone)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.trained.save(folder / MODEL_FILE)
        atomic_write_text(folder / CALIBRATION_FILE, json.dumps(asdict(self.calibration), indent=2))

    def logits_from_features(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (photo, subtype) logits from the frozen part's output (a 7x7x1280 grid may also
        be given pooled, as (n, 1280), to a transfer classifier)."""
        features = np.asarray(features, np.float32)
        if self.kind == "transfer" and features.ndim == 4:
            features = features.mean(axis=(1, 2))
        photo, subtype = self.trained.predict_on_batch(features)
        return np.ravel(photo), np.asarray(subtype)

    def predict_from_features(self, features: np.ndarray) -> list[Prediction]:
        """Predictions from the output of the shared frozen layers (`features_layer`)."""
        return decide(*self.logits_from_features(features), self.calibration)

    def features(self, batch: np.ndarray) -> np.ndarray:
        """The frozen part's output for a (n, 224, 224, 3) batch in [0, 1]."""
        return keras.ops.convert_to_numpy(self.frozen(batch, training=False))

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 32) -> list[Prediction]:
        """Predictions for uint8 RGB images of any size (stretched to 224, as in training)."""
        predictions: list[Prediction] = []
        for start in range(0, len(images), batch_size):
            batch = np.stack(
                [to_model_input(i, IMAGE_SIZE) for i in images[start : start + batch_size]]
            )
            predictions += self.predict_from_features(self.features(batch))
        return predictions

    def predict_files(
        self, paths: Sequence[Path], batch_size: int = 32, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> Iterator[tuple[Path, Prediction | ImageLoadError]]:
        """(path, prediction or load error) per file, in order; a bad file never stops the batch.

        A worker thread decodes the next batch while the model runs on this one (both release
        the GIL), which is most of the speed on 2 cores.
        """
        batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
        with ThreadPoolExecutor(1) as pool:
            pending = [pool.submit(_load_batch, batch, max_pixels) for batch in batches[:1]]
            for i, batch in enumerate(batches):
                loaded = pending.pop().result()
                if i + 1 < len(batches):
                    pending.append(pool.submit(_load_batch, batches[i + 1], max_pixels))
                images = [item for item in loaded if isinstance(item, np.ndarray)]
                predictions = iter(self.predict(images, batch_size))
                for path, item in zip(batch, loaded, strict=True):
                    yield path, next(predictions) if isinstance(item, np.ndarray) else item


def _load_batch(paths: Sequence[Path], max_pixels: int) -> list[np.ndarray | ImageLoadError]:
    loaded: list[np.ndarray | ImageLoadError] = []
    for path in paths:
        try:
            loaded.append(load_image(path, max_pixels=max_pixels))
        except ImageLoadError as error:
            loaded.append(error)
    return loaded
