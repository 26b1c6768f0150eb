"""Training the three compared models and the regularisation ablations, from the feature cache.

Every run is calibrated and thresholded on val the same way as the shipped model, so the
comparison is like for like, and is summarised as a `RunRecord` (history, timing, metrics)
that the report reads back. Nothing here looks at test except to record final metrics.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from scancap import classify
from scancap.backbone import load_backbone
from scancap.classify import Calibration, HeadConfig
from scancap.classify_metrics import (
    all_metrics,
    bootstrap_metrics,
    format_interval,
    markdown_table,
)
from scancap.doctype import (
    LABELS,
    SPLIT_FILE,
    SPLIT_SEED,
    FeatureCache,
    build_feature_cache,
    limit_split,
    load_clean_images,
    load_manifest,
    make_split,
    to_gray,
)
from scancap.io import atomic_write_text

SEED = 42
EVAL_SETS = ("val", "test", "val_gray", "test_gray")


@dataclass(frozen=True)
class TrainConfig:
    """One run's recipe: model kind, head regularisation, data views and optimisation."""

    kind: str  # "transfer", "finetuned" or "baseline"
    head: HeadConfig = HeadConfig()
    augmented_views: bool = True
    early_stopping: bool = True
    patience: int = 5
    epochs: int = 60
    batch_size: int = 128
    learning_rate: float = 1e-3


SHIPPED = TrainConfig("transfer")
FINETUNED = TrainConfig("finetuned", epochs=6, patience=2, batch_size=64, learning_rate=1e-4)
BASELINE = TrainConfig("baseline", augmented_views=False, epochs=15, patience=3, batch_size=32)
NO_REGULARISATION = replace(
    SHIPPED, head=HeadConfig(dropout=0.0, l2=0.0), augmented_views=False, early_stopping=False
)
# Each ablation removes one regulariser from the shipped recipe; "none" removes them all.
ABLATIONS = {
    "transfer": ("shipped recipe: dropout 0.3, L2 1e-4, augmented views, early stopping", SHIPPED),
    "no_dropout": ("without dropout", replace(SHIPPED, head=replace(SHIPPED.head, dropout=0.0))),
    "no_l2": ("without L2", replace(SHIPPED, head=replace(SHIPPED.head, l2=0.0))),
    "no_augmentation": ("clean views only", replace(SHIPPED, augmented_views=False)),
    "no_early_stopping": ("60 epochs, last weights", replace(SHIPPED, early_stopping=False)),
    "no_regularisation": ("none of the four", NO_REGULARISATION),
}


@dataclass
class Dataset:
    """Inputs and labels of the training set and of every evaluation set, for one model kind."""

    train: tuple[np.ndarray, np.ndarray]
    evals: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class RunRecord:
    """What the report needs from a training run."""

    name: str
    description: str
    config: dict
    history: dict[str, list[float]]
    seconds: float
    calibration: dict
    metrics: dict[str, dict[str, list[float]]]  # eval set -> metric -> [value, low, high]

    def save(self, folder: Path) -> Path:
        return atomic_write_text(folder / f"{self.name}.json", json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        return cls(**json.loads(path.read_text()))


# --- data -----------------------------------------------------------------------------------------


def cache_dataset(cache: FeatureCache, config: TrainConfig) -> Dataset:
    """Pooled vectors (transfer) or trunk grids (fine-tuned) for every split and view."""
    source = cache.trunk if config.kind == "finetuned" else cache.pooled
    labels = cache.index["y"].to_numpy()

    def take(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(source[rows], np.float32), labels[rows]

    train_rows = cache.rows("train", None if config.augmented_views else "clean")
    evals = {
        f"{s}{suffix}": take(cache.rows(s, v))
        for s in ("val", "test")
        for suffix, v in (("", "clean"), ("_gray", "gray"))
    }
    return Dataset(take(train_rows), evals)


def image_dataset(split: pd.DataFrame, size: int, progress: bool) -> Dataset:
    """Clean images for the from-scratch baseline (its own augmentation is none)."""
    images = load_clean_images(split, size, progress=progress)
    labels = split["y"].to_numpy()

    def take(name: str, gray: bool = False) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero((split["split"] == name).to_numpy())
        x = np.stack([to_gray(i) for i in images[rows]]) if gray else images[rows]
        return x, labels[rows]

    evals = {"val": take("val"), "test": take("test")}
    evals |= {"val_gray": take("val", True), "test_gray": take("test", True)}
    return Dataset(take("train"), evals)


# --- training -------------------------------------------------------------------------------------


def build_model(config: TrainConfig, head_weights: keras.Model | None = None) -> keras.Model:
    """A compiled model of the config's kind; a fine-tuned top starts from a trained head."""
    keras.utils.set_random_seed(SEED)
    if config.kind == "transfer":
        model = classify.build_head(config.head)
    elif config.kind == "finetuned":
        model = classify.build_top(load_backbone(), config.head)
        if head_weights is not None:
            for layer in head_weights.layers:
                if layer.weights:
                    model.get_layer(layer.name).set_weights(layer.get_weights())
    else:
        model = classify.build_baseline()
    return classify.compile_two_outputs(model, config.learning_rate)


def fit(
    model: keras.Model, config: TrainConfig, data: Dataset, verbose: int = 0
) -> tuple[dict[str, list[float]], float]:
    """Train on data.train, validating on clean val; returns (history, seconds)."""
    callbacks = []
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                "val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    x, y = data.train
    x_val, y_val = data.evals["val"]
    start = time.perf_counter()
    history = model.fit(
        x,
        classify.targets(y),
        validation_data=(x_val, classify.targets(y_val)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    return {k: [float(v) for v in values] for k, values in history.history.items()}, seconds


def logits(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    photo, subtype = model.predict(x, batch_size=256, verbose=0)
    return np.ravel(photo), subtype


def evaluate(
    model: keras.Model, data: Dataset, rounds: int
) -> tuple[Calibration, dict[str, dict[str, list[float]]]]:
    """Calibrate on clean val, then metrics on every set (bootstrap intervals on test sets)."""
    outputs = {name: logits(model, x) for name, (x, _) in data.evals.items()}
    val_labels = data.evals["val"][1]
    calibration = Calibration.fit(outputs["val"][0], val_labels == classify.PHOTO)
    metrics = {}
    for name, (photo, subtype) in outputs.items():
        labels = data.evals[name][1]
        p_photo = calibration.p_photo(photo)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(subtype))
        if name.startswith("test"):
            values = bootstrap_metrics(
                labels, p_photo, probabilities, calibration.threshold, rounds
            )
        else:
            point = all_metrics(labels, p_photo, probabilities, calibration.threshold)
            values = {k: (v, v, v) for k, v in point.items()}
        metrics[name] = {k: [float(x) for x in v] for k, v in values.items()}
    return calibration, metrics


def run(
    name: str,
    description: str,
    config: TrainConfig,
    data: Dataset,
    head_weights: keras.Model | None = None,
    rounds: int = 1000,
    verbose: int = 0,
) -> tuple[keras.Model, RunRecord]:
    """Build, train, calibrate and evaluate one configuration."""
    model = build_model(config, head_weights)
    history, seconds = fit(model, config, data, verbose)
    calibration, metrics = evaluate(model, data, rounds)
    record = RunRecord(
        name, description, asdict(config), history, seconds, asdict(calibration), metrics
    )
    return model, record


# --- the shipped model and the comparison ---------------------------------------------------------


def save_classifier(folder: Path, model: keras.Model, record: RunRecord) -> None:
    """The trained part, its calibration and its training record (curves, metrics)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / classify.MODEL_FILE)
    calibration = json.dumps(record.calibration, indent=2)
    atomic_write_text(folder / classify.CALIBRATION_FILE, calibration)
    record.save(folder)


def compare(
    cache: FeatureCache,
    split: pd.DataFrame,
    shipped: tuple[keras.Model, RunRecord],
    runs_dir: Path,
    epochs: int | None,
    progress: bool,
) -> None:
    """Train the ablations, the fine-tuned top and the baseline; save every record."""
    head, record = shipped
    record.save(runs_dir)
    for name, (description, config) in ABLATIONS.items():
        if name != record.name:
            config = _with_epochs(config, epochs)
            run(name, description, config, cache_dataset(cache, config))[1].save(runs_dir)
    config = _with_epochs(FINETUNED, epochs)
    description = "blocks 14-18 + head fine-tuned from the transfer head, lr 1e-4"
    run("finetuned", description, config, cache_dataset(cache, config), head)[1].save(runs_dir)
    config = _with_epochs(BASELINE, epochs)
    data = image_dataset(split, classify.IMAGE_SIZE, progress)
    run("baseline", "small CNN from scratch on clean 224 px images", config, data)[1].save(runs_dir)


def _with_epochs(config: TrainConfig, epochs: int | None) -> TrainConfig:
    return config if epochs is None else replace(config, epochs=min(epochs, config.epochs))


def train_classifier(
    out: Path,
    data: Path | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    epochs: int | None = None,
    runs_dir: Path | None = None,
    progress: bool = True,
) -> RunRecord:
    """Split, cache features, train and calibrate the shipped classifier into `out`.

    With `runs_dir`, also train the compared models and ablations for the report. `limit` keeps
    a few images per label and split, for smoke tests; `epochs` caps every run's epochs.
    """
    split = make_split(load_manifest(data))
    if limit:
        split = limit_split(split, limit)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SPLIT_FILE, split.to_csv(index=False))
    split = split.assign(y=split["label"].map(LABELS.index))
    cache = build_feature_cache(split, cache_dir, data, progress=progress)
    config = _with_epochs(SHIPPED, epochs)
    description = ABLATIONS["transfer"][0]
    model, record = run("transfer", description, config, cache_dataset(cache, config))
    save_classifier(out, model, record)
    atomic_write_text(out / "model_card.md", model_card(record, split))
    if runs_dir:
        compare(cache, split, (model, record), runs_dir, epochs, progress)
    return record


CARD_METRICS = {
    "accuracy": "binary accuracy",
    "precision": "precision on photo",
    "recall": "recall on photo",
    "f1": "F1 on photo",
    "roc_auc": "ROC-AUC",
    "painting_as_photo": "paintings called photos",
    "subtype_accuracy": "5-class accuracy",
}


def model_card(record: RunRecord, split: pd.DataFrame) -> str:
    """The model card: what the model is, what it was trained on, how well it does, limits."""
    counts = split.groupby(["label", "split"]).size().unstack()[list(("train", "val", "test"))]
    rows = [
        f"| {label} | {format_interval(record.metrics['val'][key])} | "
        f"{format_interval(record.metrics['test'][key])} |"
        for key, label in CARD_METRICS.items()
    ]
    gray = record.metrics["test_gray"]["recall"]
    calibration = record.calibration
    config = record.config
    return f"""# Model card: scancap photo-or-not classifier

Trained {datetime.date.today().isoformat()} by `scancap train classifier`.

## Model
- Frozen ImageNet MobileNetV2 (`models/mobilenet_v2_imagenet.keras`, torchvision weights), global
  average pooling of its 7x7x1280 grid, then the trained head in `classifier.keras`: dropout
  {config["head"]["dropout"]}, Dense {config["head"]["hidden"]} ReLU, dropout, and two outputs,
  a photo logit and 5 subtype logits ({", ".join(LABELS)}); L2 {config["head"]["l2"]}.
- Input: any RGB image, stretched to 224x224 (no aspect ratio, size or border is used).
- Decision: p(photo) = sigmoid(logit / T) with T = {calibration["temperature"]:.4f} fitted on
  val; photo iff p(photo) >= {calibration["threshold"]:.4f}, the lowest threshold whose val
  precision on photo is >= {calibration["target_precision"]:.0%} (never below 0.5). Both live
  in `calibration.json`; `scancap classify --threshold P` overrides the threshold. A non-photo's
  subtype is its likeliest non-photo label.

## Data
`doctype/manifest.csv` from the shared datasets (8,880 images, 5 labels, 16 sources), split
70/15/15 stratified by (label, source) with seed {SPLIT_SEED}; the split is `{SPLIT_FILE}`.
Training used each training image plus 3 seeded scan-like augmented views (crop, flip, colour
jitter, grey or sepia, low resolution, blur, noise, JPEG).

{markdown_table(counts)}

## Metrics (95% bootstrap intervals on test; val chose the threshold)
| metric | val | test |
|---|---|---|
{chr(10).join(rows)}

Photo recall on test images converted to grey (old black-and-white prints):
{format_interval(gray)}. The full evaluation is `reports/classification.md`.

## Licence and intended use
The training images are mostly licensed for research use only (PACS, Flickr8k, SROIE, TU-Berlin
and others; see the datasets README): this model is for evaluation and demonstration, not for
commercial use. It was trained on small (<= 224 px) images of 16 sources; on other sources
(full-size scans, other painting styles) expect lower accuracy, realistic paintings being the
known hard case.
"""
