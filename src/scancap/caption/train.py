"""Training the captioner on Flickr8k train, selecting the epoch on dev CIDEr-D.

Features come from the cache (one backbone pass per image, ever). Each epoch ends with greedy
decoding of the dev images and BLEU-4/CIDEr-D on them: the checkpoint keeps the best CIDEr-D
epoch, the learning rate halves when it stalls and training stops when it stops improving.
`BackupAndRestore` saves the state every epoch, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from scancap import paths
from scancap.caption.data import (
    FeatureCache,
    build_feature_cache,
    caption_dataset,
    caption_pairs,
    load_captions,
    load_split,
    references,
)
from scancap.caption.model import (
    CONFIG_FILE,
    DECODING_FILE,
    VOCABULARY_FILE,
    WEIGHTS_FILE,
    CaptionDecoder,
    Captioner,
    Decoder,
    Vocabulary,
    load_decoder,
    load_decoders,
    save_decoder,
)
from scancap.caption.scst import (
    SCST_HISTORY_FILE,
    STATE_FILE,
    ScstData,
    ScstRecipe,
    dev_scores,
    self_critical,
)
from scancap.io import atomic_write_text
from scancap.memory import peak_rss_mb

HISTORY_FILE = "history.csv"
RECORD_FILE = "training.json"
MONITOR = "val_cider"
DECODING_BEAM = 3  # the beam width the product uses
LENGTH_PENALTIES = (0.7, 1.0, 1.3, 1.6, 2.0)  # beam search's length exponents tried on dev


@dataclass(frozen=True)
class Recipe:
    """Everything that defines the shipped captioner besides the data."""

    min_count: int = 5
    length_percentile: float = 99.0
    embedding_dim: int = 256
    units: int = 512
    attention_units: int = 512
    projection_dim: int = 512
    dropout: float = 0.4
    label_smoothing: float = 0.1
    attention_weight: float = 1.0
    flip: bool = True
    batch_size: int = 64
    learning_rate: float = 1e-3
    clipnorm: float = 5.0
    epochs: int = 12
    patience: int = 3
    seed: int = 42
    scst: ScstRecipe = field(default_factory=ScstRecipe)

    def decoder_kwargs(self) -> dict:
        names = ("embedding_dim", "units", "attention_units", "projection_dim", "dropout")
        names += ("label_smoothing", "attention_weight")
        return {name: getattr(self, name) for name in names}


class DevCaptionScore(keras.callbacks.Callback):
    """Greedy-decodes the dev images after each epoch and logs val_bleu4 and val_cider.

    It must come before the callbacks that read these values (checkpoint, early stopping).
    Also logs the epoch's duration, for the speed figures of the report.
    """

    def __init__(
        self,
        grids: np.ndarray,
        refs: dict[str, list[str]],
        vocab: Vocabulary,
        verbose: bool = True,
    ) -> None:
        super().__init__()
        self.grids, self.refs, self.vocab, self.verbose = grids, refs, vocab, verbose
        self._started = 0.0
        self._captioner: Captioner | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._captioner = Captioner.of(self.model, self.vocab)  # traced once, reused every epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        scores = dev_scores(self._captioner, self.grids, self.refs, beam=1)
        logs = logs if logs is not None else {}
        logs |= {"val_bleu4": scores["BLEU-4"], MONITOR: scores["CIDEr-D"]}
        logs["epoch_seconds"] = time.perf_counter() - self._started
        logs["peak_rss_mb"] = peak_rss_mb()  # per run: the history keeps the peak over resumes
        if not self.verbose:
            return
        print(
            f"\nepoch {epoch + 1}: dev greedy BLEU-4 {scores['BLEU-4']:.4f} CIDEr-D "
            f"{scores['CIDEr-D']:.4f} ({logs['epoch_seconds']:.0f} s)",
            flush=True,
        )


class TimeBudget(keras.callbacks.Callback):
    """Stops after the last epoch that fits in the budget; the run resumes from the backup."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.exhausted = False
        self._started = time.perf_counter()
        self._epochs = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._epochs += 1
        elapsed = time.perf_counter() - self._started
        per_epoch = elapsed / self._epochs
        last = epoch + 1 >= self.params["epochs"]
        if not last and elapsed + per_epoch > self.seconds:
            self.exhausted = self.model.stop_training = True
            print(f"time budget reached after epoch {epoch + 1}: rerun to resume", flush=True)


def _best_so_far(history_path: Path) -> float | None:
    """Best monitored score of the epochs already run, so a resumed checkpoint keeps it."""
    if not history_path.exists():
        return None
    history = pd.read_csv(history_path)
    return float(history[MONITOR].max()) if len(history) else None


def best_weights_only(model: CaptionDecoder, checkpoint: Path) -> CaptionDecoder:
    """The checkpointed epoch without the optimizer state (two thirds of the checkpoint)."""
    model.load_weights(checkpoint)
    shipped = CaptionDecoder.from_config(model.get_config())
    shipped.build()
    shipped.set_weights(model.get_weights())
    return shipped


def machine() -> str:
    """CPU model and core count, for the speed and memory figures."""
    cpuinfo = Path("/proc/cpuinfo")
    names = re.findall(r"model name\s*: (.+)", cpuinfo.read_text()) if cpuinfo.exists() else []
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores"


@dataclass
class TrainingData:
    """Flickr8k train and dev as the decoder sees them: cached grids, captions, vocabulary."""

    cache: FeatureCache
    captions: pd.DataFrame
    train_images: list[str]
    dev_images: list[str]

    def dev(self) -> tuple[np.ndarray, dict[str, list[str]]]:
        """Dev grids (memory-mapped) and references, in the same order."""
        return self.cache.grids[self.cache.rows(self.dev_images)], self.references(self.dev_images)

    def references(self, images: list[str]) -> dict[str, list[str]]:
        return references(self.captions, images)

    def scst(self) -> ScstData:
        return ScstData(
            self.cache.grids,
            self.cache.rows(self.train_images),
            self.train_images,
            self.references(self.train_images),
            self.cache.rows(self.dev_images),
            self.references(self.dev_images),
        )


def load_training_data(
    data: Path | None, cache_dir: Path, limit: int | None, progress: bool
) -> TrainingData:
    train_images, dev_images = load_split("train", data, limit), load_split("dev", data, limit)
    cache = build_feature_cache(train_images + dev_images, cache_dir, data, progress=progress)
    return TrainingData(cache, load_captions(data), train_images, dev_images)


def train_captioner(
    out: Path,
    data: Path | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    epochs: int | None = None,
    recipe: Recipe = Recipe(),
    max_minutes: float | None = None,
    progress: bool = True,
    init: Path | None = None,
    scst_epochs: int | None = None,
    seed: int | None = None,
) -> dict | None:
    """Train into `out` (weights, config, vocabulary, histories, record); returns the record.

    Two phases: cross-entropy with teacher forcing, then self-critical fine-tuning on dev
    CIDEr-D (``scancap.caption.scst``). `init` skips the first phase and fine-tunes the
    cross-entropy decoder found there. `limit` keeps the first N train and N dev images (smoke
    tests). With `max_minutes`, stops after the last epoch that fits and returns None: the same
    call resumes, phase and epoch. `seed` replaces both phases' seeds (ensemble members).
    """
    if scst_epochs is not None:
        recipe = replace(recipe, scst=replace(recipe.scst, epochs=scst_epochs))
    if seed is not None:
        recipe = replace(recipe, seed=seed, scst=replace(recipe.scst, seed=seed))
    keras.utils.set_random_seed(recipe.seed)
    cache_dir = cache_dir or paths.cache_dir()
    started = time.perf_counter()
    budget = 60 * max_minutes if max_minutes else np.inf
    training = load_training_data(data, cache_dir, limit, progress)
    if init is not None and not (out / STATE_FILE).exists():  # not resuming
        copy_cross_entropy_phase(Path(init), out)
    elif not cross_entropy_done(out):
        finished = train_cross_entropy(out, training, cache_dir, epochs, recipe, budget, progress)
        if finished is None:
            return None
    record = json.loads((out / RECORD_FILE).read_text())
    model, vocab = load_decoder(out)
    if recipe.scst.epochs:
        remaining = budget - (time.perf_counter() - started)
        history = self_critical(
            model, vocab, training.scst(), out, recipe.scst, remaining, progress
        )
        if history is None:
            return None
        record["scst"] = scst_record(history, recipe.scst)
        save_decoder(model, vocab, out)
    record["decoding"] = save_decoding(out, Decoder.of(model), vocab, *training.dev())
    record["peak_rss_mb"] = max(record["peak_rss_mb"], peak_rss_mb())
    atomic_write_text(out / RECORD_FILE, json.dumps(record, indent=2))
    return record


def save_decoding(
    out: Path,
    decoder: Decoder,
    vocab: Vocabulary,
    grids: np.ndarray,
    refs: dict[str, list[str]],
    members: Sequence[str] = (),
) -> dict:
    """Choose the length exponent of `decoder` on dev; write DECODING_FILE (with the names of
    the ensemble's member folders, if any) into `out`."""
    alpha, search = choose_length_penalty(decoder, vocab, grids, refs)
    decoding = {"beam": DECODING_BEAM, "length_penalty": alpha}
    decoding |= {"members": list(members)} if members else {}
    decoding |= {"search": search.to_dict("records")}
    atomic_write_text(out / DECODING_FILE, json.dumps(decoding, indent=2))
    return decoding


def chosen_row(decoding: dict) -> dict:
    """The dev scores of the length exponent that `save_decoding` chose."""
    return max(decoding["search"], key=lambda row: row["CIDEr-D"])


def choose_length_penalty(
    decoder: Decoder,
    vocab: Vocabulary,
    grids: np.ndarray,
    refs: dict[str, list[str]],
) -> tuple[float, pd.DataFrame]:
    """Beam search's length exponent with the best dev CIDEr-D, and the scores of each tried.

    Self-critical training shifts the caption lengths the model prefers, so the exponent is
    chosen for the final weights rather than fixed.
    """
    rows = [
        {"length_penalty": alpha}
        | dev_scores(Captioner(decoder, vocab, alpha), grids, refs, DECODING_BEAM)
        for alpha in LENGTH_PENALTIES
    ]
    table = pd.DataFrame(rows)
    return float(table.loc[table["CIDEr-D"].idxmax(), "length_penalty"]), table


MEMBER_FILES = (
    WEIGHTS_FILE,
    CONFIG_FILE,
    VOCABULARY_FILE,
    DECODING_FILE,
    HISTORY_FILE,
    SCST_HISTORY_FILE,
    RECORD_FILE,
)


def build_ensemble(
    members: Sequence[Path],
    out: Path,
    data: Path | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Ship trained decoders as one captioner that averages their next-word probabilities.

    Each member folder is copied to `out`/member-N (what `out` held as a single decoder is
    then removed), and beam search's length exponent is chosen again on dev for the ensemble.
    """
    names = [f"member-{i}" for i in range(1, len(members) + 1)]
    for source, name in zip(members, names, strict=True):
        copy_member(Path(source), out / name)
    for name in MEMBER_FILES:
        (out / name).unlink(missing_ok=True)
    decoder, vocab = load_decoders([out / name for name in names])
    training = load_training_data(data, cache_dir or paths.cache_dir(), limit, progress)
    return save_decoding(out, decoder, vocab, *training.dev(), members=names)


def copy_member(source: Path, destination: Path) -> None:
    """The files of a trained decoder (not its resume checkpoints)."""
    destination.mkdir(parents=True, exist_ok=True)
    if source.resolve() == destination.resolve():
        return
    for name in MEMBER_FILES:
        if (source / name).exists():
            shutil.copyfile(source / name, destination / name)


def cross_entropy_done(out: Path) -> bool:
    """True when `out` holds a finished cross-entropy phase that SCST has not completed yet."""
    path = out / RECORD_FILE
    return path.exists() and "scst" not in json.loads(path.read_text())


def copy_cross_entropy_phase(init: Path, out: Path) -> None:
    """Start from a trained decoder: its weights, config, vocabulary, history and record."""
    out.mkdir(parents=True, exist_ok=True)
    if init.resolve() != out.resolve():
        for name in (WEIGHTS_FILE, CONFIG_FILE, VOCABULARY_FILE, HISTORY_FILE):
            shutil.copyfile(init / name, out / name)
    record = json.loads((init / RECORD_FILE).read_text())
    record.pop("scst", None)
    atomic_write_text(out / RECORD_FILE, json.dumps(record, indent=2))


def scst_record(history: pd.DataFrame, recipe: ScstRecipe) -> dict:
    best = history.loc[history["dev_CIDEr-D"].idxmax()]
    start = history.iloc[0]
    return {
        "date": datetime.date.today().isoformat(),
        "recipe": asdict(recipe),
        "epochs_run": len(history) - 1,
        "best_epoch": int(best["epoch"]),
        "dev_beam3_before": {"BLEU-4": start["dev_BLEU-4"], "CIDEr-D": start["dev_CIDEr-D"]},
        "dev_beam3_best": {"BLEU-4": best["dev_BLEU-4"], "CIDEr-D": best["dev_CIDEr-D"]},
        "train_seconds": float(history["seconds"].sum()),
        "seconds_per_epoch": float(history["seconds"].iloc[1:].mean()),
    }


def train_cross_entropy(
    out: Path,
    training: TrainingData,
    cache_dir: Path,
    epochs: int | None,
    recipe: Recipe,
    budget_seconds: float,
    progress: bool,
) -> dict | None:
    """The teacher-forced phase: best dev greedy CIDEr-D epoch into `out`, and its record."""
    cache, captions = training.cache, training.captions
    train_images, dev_images = training.train_images, training.dev_images
    train_captions = captions[captions["image"].isin(set(train_images))]["caption"]
    vocab = Vocabulary.build(train_captions, recipe.min_count, recipe.length_percentile)
    train_pairs = caption_pairs(captions, train_images, cache, vocab)
    dev_pairs = caption_pairs(captions, dev_images, cache, vocab)

    model = CaptionDecoder(len(vocab), **recipe.decoder_kwargs())
    model.build()
    model.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate, clipnorm=recipe.clipnorm),
        jit_compile=False,
    )
    save_decoder(model, vocab, out, weights=False)  # the checkpoint adds the best weights
    backup = cache_dir / "captioner_backup" / out.resolve().as_posix().strip("/").replace("/", "_")
    history_path = out / HISTORY_FILE
    resuming = (backup / "training_metadata.json").exists()
    callbacks = [
        DevCaptionScore(*training.dev(), vocab, progress),
        keras.callbacks.ReduceLROnPlateau(MONITOR, factor=0.5, patience=1, mode="max", min_lr=1e-5),
        keras.callbacks.ModelCheckpoint(
            out / WEIGHTS_FILE,
            monitor=MONITOR,
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=_best_so_far(history_path) if resuming else None,
        ),
        keras.callbacks.EarlyStopping(MONITOR, patience=recipe.patience, mode="max"),
        keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False),
        keras.callbacks.CSVLogger(history_path, append=resuming),
        budget := TimeBudget(budget_seconds),
    ]
    model.fit(
        caption_dataset(
            train_pairs, cache.grids, vocab, recipe.batch_size, True, recipe.flip, recipe.seed
        ),
        validation_data=caption_dataset(dev_pairs, cache.grids, vocab, 128, shuffle=False),
        epochs=epochs or recipe.epochs,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself
        verbose=2 if progress else 0,
    )
    if budget.exhausted:
        return None
    shutil.rmtree(backup)
    save_decoder(best_weights_only(model, out / WEIGHTS_FILE), vocab, out)
    history = pd.read_csv(history_path)
    best = history.loc[history[MONITOR].idxmax()]
    record = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "recipe": asdict(recipe),
        "train_images": len(train_images),
        "train_captions": len(train_pairs.rows),
        "dev_images": len(dev_images),
        "vocabulary": len(vocab),
        "max_len": vocab.max_len,
        "parameters": model.count_params(),
        "epochs_run": len(history),
        "best_epoch": int(best["epoch"]) + 1,
        "best_dev_greedy": {"BLEU-4": float(best["val_bleu4"]), "CIDEr-D": float(best[MONITOR])},
        "train_seconds": float(history["epoch_seconds"].sum()),  # over resumed runs too
        "seconds_per_epoch": float(history["epoch_seconds"].mean()),
        "peak_rss_mb": max(peak_rss_mb(), history.get("peak_rss_mb", pd.Series([0.0])).max()),
    }
    atomic_write_text(out / RECORD_FILE, json.dumps(record, indent=2))
    return record
