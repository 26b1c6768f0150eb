"""A person's corrections in, a model folder adapted to their archive out (`scancap adapt`).

A corrections file is a CSV with `path` and `label` (one of photo, painting, schematic, text,
sketch): the review file `scancap review` writes, once a person has filled its `label` column
(rows left blank are not corrections), or the one the report downloads. Paths are where the
pages are (absolute, or relative to the file), a page of a document as `file.pdf#page=N`.

The adapted folder is complete: `classifier/` holds the base classifier's files unchanged plus
the adaptation (the corrected items' features, the base decisions on them and their labels)
and a card naming the corrections; `captioner/` is the base captioner's copy. Every command
takes it with `--models DIR`; the base folder is never written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from scancap.backbones.inputs import to_model_input
from scancap.batch import load_batches
from scancap.classify.adapt import ADAPTATION_FILE, SETTINGS_FILE, Adaptation
from scancap.classify.data import LABELS, PHOTO
from scancap.classify.model import IMAGE_SIZE, Classifier, pooled_features
from scancap.io import ImageLoadError
from scancap.page_table import read_page_table
from scancap.paths import models_dir

ADAPTED_CARD = "adapted.md"


@dataclass
class AdaptRecord:
    """What `scancap adapt` did, for its summary line and the card."""

    out: Path
    counts: dict[str, int]
    unreadable: list[tuple[str, str]]  # (page, why)
    sources: list[tuple[str, str]]  # (corrections file, its sha256)


def read_corrections(tables: list[Path]) -> pd.DataFrame:
    """Every labelled row of the files, in order (a page corrected twice keeps its last label):
    line, name, page, label, file; a bad row is a `TableError` naming its file and line."""
    frames = []
    for table in tables:
        rows = read_page_table(table, ["label"], choices={"label": LABELS}, skip_blank="label")
        frames.append(rows.assign(file=str(table)))
    corrections = pd.concat(frames, ignore_index=True)
    corrections["location"] = [page.location() for page in corrections["page"]]
    return corrections.drop_duplicates("location", keep="last").reset_index(drop=True)


def correction_features(
    classifier: Classifier, corrections: pd.DataFrame, max_pixels: int | None = None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """(the readable corrections, their pooled features, the base's margins and subtype
    logits on them, and the unreadable ones with why). The base ignores any adaptation it has:
    corrections are always learnt against the trained head's own decisions."""
    positions, pooled, photo, subtype, unreadable = [], [], [], [], []
    options = {"max_pixels": max_pixels} if max_pixels else {}
    done = 0
    for batch in load_batches(list(corrections["page"]), 32, **options):
        images = []
        for offset, (_, item) in enumerate(batch):
            if isinstance(item, ImageLoadError):
                unreadable.append((corrections["name"].iloc[done + offset], item.reason))
            else:
                images.append((done + offset, item))
        done += len(batch)
        if not images:
            continue
        inputs = np.stack([to_model_input(image, IMAGE_SIZE) for _, image in images])
        features = classifier.features(inputs)
        logits = classifier.logits_from_features(features)
        positions += [position for position, _ in images]
        pooled.append(pooled_features(features))
        photo.append(logits[0])
        subtype.append(logits[1])
    if not positions:
        empty = np.zeros((0, 1280), np.float32), np.zeros(0), np.zeros((0, len(LABELS)))
        return corrections.iloc[:0], *empty, unreadable
    margins = classifier.calibration.margins(np.concatenate(photo))
    return (corrections.iloc[positions], np.concatenate(pooled), margins,
            np.concatenate(subtype), unreadable)  # fmt: skip


def adapt_models(
    tables: list[Path], out: Path, base: Path | None = None, max_pixels: int | None = None
) -> AdaptRecord:
    """Learn the corrections in `tables` and write the adapted model folder `out` (its
    `classifier/` and `captioner/`); `base`: the folder adapted from (default: the shipped
    models). An adapted base keeps its corrections and gains the new ones."""
    base = Path(base) if base else models_dir()
    out = Path(out)
    if out.resolve() == base.resolve() or out.resolve().is_relative_to(models_dir().resolve()):
        raise ValueError(f"{out}: an adapted model never replaces its base: choose another --out")
    corrections = read_corrections(tables)
    classifier = Classifier.load(base / "classifier")
    earlier, classifier.adaptation = classifier.adaptation, None
    kept, pooled, margins, subtype, unreadable = correction_features(
        classifier, corrections, max_pixels
    )
    labels = np.array([LABELS.index(label) for label in kept["label"]], dtype=int)
    adaptation = Adaptation(pooled, margins, subtype, labels, PHOTO)
    if earlier is not None:
        adaptation = earlier.joined(adaptation)
    sources = [(str(t), hashlib.sha256(Path(t).read_bytes()).hexdigest()) for t in tables]
    record = AdaptRecord(out, dict(Counter(kept["label"])), unreadable, sources)
    _write_folder(base, out, adaptation, record, kept)
    return record


def _write_folder(
    base: Path, out: Path, adaptation: Adaptation, record: AdaptRecord, kept: pd.DataFrame
) -> None:
    """The adapted folder, built beside `out` and moved into place whole (an interrupted
    adapt leaves no half folder); an existing `out` is replaced only once the new one is
    complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        shutil.copytree(base / "captioner", staging / "captioner")
        classifier = staging / "classifier"
        shutil.copytree(base / "classifier", classifier,
                        ignore=shutil.ignore_patterns(ADAPTATION_FILE, SETTINGS_FILE))  # fmt: skip
        adaptation.save(classifier)
        kept[["location", "label", "file", "line"]].to_csv(classifier / "corrections.csv",
                                                           index=False)  # fmt: skip
        (classifier / ADAPTED_CARD).write_text(adapted_card(base, adaptation, record))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def adapted_card(base: Path, adaptation: Adaptation, record: AdaptRecord) -> str:
    """The adapted classifier's card: its base, the corrections that built it, the method."""
    counts = Counter(LABELS[i] for i in adaptation.labels)
    lines = [
        "# Adapted classifier",
        "",
        f"Written {date.today().isoformat()} by `scancap adapt` from the classifier in "
        f"`{base.resolve() / 'classifier'}` (its files are copied here unchanged).",
        "",
        f"{len(adaptation.labels)} corrections: "
        + ", ".join(f"{label} {counts[label]}" for label in LABELS if counts[label])
        + ".",
        "",
        "| corrections file | sha256 |",
        "|---|---|",
        *(f"| `{name}` | `{digest}` |" for name, digest in record.sources),
        "",
        "Each corrected item's residual (the margin its label asks for, ±T, minus the base "
        "decision's) spreads to every item by kernel regression on the frozen pooled "
        "features (`scancap.classify.adapt`); settings: "
        + json.dumps(adaptation.settings.__dict__)
        + ". The corrected items are listed in "
        "`corrections.csv`.",
        "",
    ]
    return "\n".join(lines)
