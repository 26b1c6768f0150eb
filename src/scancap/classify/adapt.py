"""Learning one archive from a person's corrections, on the frozen features.

An archive is a few sources (a box of glass plates, an album, a set of museum slides), and the
classifier's mistakes on a source it never saw are systematic: a whole collection of realistic
paintings called photos. So a person's label is worth most when it moves the decision of every
look-alike item:

- the **review queue** puts the least certain decisions first (`margin_order`): on archives of
  held-out sources it found the errors sooner than a queue built to cover every group of
  look-alikes (reports/classification.md, "Adaptation");
- **propagation** spreads each corrected item's residual (the margin its label asks for, minus
  the margin the classifier gave it) to every item by kernel regression on the frozen pooled
  features, so look-alikes move with it and far-away items stay as they were.

Margins are calibrated logits minus the threshold's: a photo has a positive margin. Everything
here is plain NumPy on (n, d) feature rows: the study that chose it and the product run the same
functions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

ADAPTATION_FILE = "adaptation.npz"
SETTINGS_FILE = "adaptation.json"


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32), so that a dot product is a cosine similarity."""
    features = np.asarray(features, np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def margin_order(margins: np.ndarray) -> np.ndarray:
    """Items by uncertainty alone: the smallest |margin| first."""
    return np.argsort(np.abs(np.asarray(margins, np.float64)), kind="stable")


@dataclass(frozen=True)
class Propagation:
    """Kernel regression of the corrected items' residuals: k(x, c) = exp((cos − 1) / h)."""

    # Chosen on the select half's archives (reports/classification.md, "Adaptation").
    bandwidth: float = 0.2  # h: how far a correction reaches in cosine similarity
    target: float = 8.0  # T: the margin a corrected label asks for (±T)
    ridge: float = 1.0  # λ: how much several look-alike corrections are averaged, not summed


def kernel(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    """exp((cos(a_i, b_j) − 1) / h): 1 for the same direction, fast to 0 for unlike items."""
    return np.exp((unit_rows(a) @ unit_rows(b).T - 1.0) / bandwidth)


def propagated(
    features: np.ndarray,
    reviewed: np.ndarray,
    residuals: np.ndarray,
    settings: Propagation,
) -> np.ndarray:
    """Each item's share of the reviewed items' residuals (rows of `residuals`, one per
    reviewed item): k(x, C) (K + λI)⁻¹ r."""
    weights = ridge_weights(reviewed, residuals, settings)
    return kernel(features, reviewed, settings.bandwidth) @ weights


def ridge_weights(reviewed: np.ndarray, residuals: np.ndarray, settings: Propagation) -> np.ndarray:
    """(K + λI)⁻¹ r: what each reviewed item lends its look-alikes, solved once."""
    gram = kernel(reviewed, reviewed, settings.bandwidth)
    return np.linalg.solve(gram + settings.ridge * np.eye(len(gram)), residuals)


def margin_residuals(margins: np.ndarray, is_photo: np.ndarray, target: float) -> np.ndarray:
    """What each reviewed item's label asks of its margin: +T for a photo, −T for the rest,
    minus the margin it has (nothing when it already stands past the target)."""
    margins = np.asarray(margins, np.float64)
    wanted = np.where(np.asarray(is_photo, bool), target, -target)
    short = np.where(wanted > 0, margins < wanted, margins > wanted)
    return np.where(short, wanted - margins, 0.0)


def logit_residuals(logits: np.ndarray, labels: np.ndarray, target: float) -> np.ndarray:
    """The same for the subtype logits: the labelled class ahead of the others by T."""
    logits = np.asarray(logits, np.float64)
    wanted = logits.copy()
    rows = np.arange(len(logits))
    others = logits.copy()
    others[rows, labels] = -np.inf
    wanted[rows, labels] = np.maximum(logits[rows, labels], others.max(axis=1) + target)
    return wanted - logits


@dataclass
class Adaptation:
    """What an adapted classifier adds to its base: the corrected items' features, the margins
    and subtype logits the base gave them, and their labels (subtype indices)."""

    features: np.ndarray  # (k, d) the similarity features of the corrected items
    margins: np.ndarray  # (k,) their base margins
    subtype_logits: np.ndarray  # (k, classes) their base subtype logits
    labels: np.ndarray  # (k,) their corrected labels, subtype indices
    photo_label: int  # which label index is "photo"
    settings: Propagation = Propagation()

    def shift(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(margin shift (n,), subtype logit shift (n, classes)) for items with `features`."""
        if not len(self.labels):
            return np.zeros(len(features)), np.zeros((len(features), self.subtype_logits.shape[1]))
        moved = kernel(features, self.features, self.settings.bandwidth) @ self.weights
        return moved[:, 0], moved[:, 1:]

    @cached_property
    def weights(self) -> np.ndarray:
        """The corrections' ridge weights, solved once however many batches are decided."""
        target = self.settings.target
        residuals = np.column_stack(
            [
                margin_residuals(self.margins, self.labels == self.photo_label, target),
                logit_residuals(self.subtype_logits, self.labels, target),
            ]
        )
        return ridge_weights(self.features, residuals, self.settings)

    def joined(self, later: Adaptation) -> Adaptation:
        """This adaptation's corrections followed by `later`'s (an adapted model adapted again);
        a page corrected in both keeps both rows, the later label weighing as much."""
        arrays = [
            np.concatenate([getattr(self, name), getattr(later, name)])
            for name in ("features", "margins", "subtype_logits", "labels")
        ]
        return Adaptation(*arrays, photo_label=self.photo_label, settings=later.settings)

    def save(self, folder: Path) -> None:
        arrays = {k: getattr(self, k) for k in ("features", "margins", "subtype_logits", "labels")}
        np.savez(folder / ADAPTATION_FILE, **arrays)
        meta = {"photo_label": self.photo_label, "settings": asdict(self.settings)}
        (folder / SETTINGS_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Adaptation | None:
        """The folder's adaptation, or None for a classifier that was never adapted."""
        if not (folder / ADAPTATION_FILE).exists():
            return None
        stored = np.load(folder / ADAPTATION_FILE)
        meta = json.loads((folder / SETTINGS_FILE).read_text())
        return cls(
            *(stored[k] for k in ("features", "margins", "subtype_logits", "labels")),
            photo_label=int(meta["photo_label"]),
            settings=Propagation(**meta["settings"]),
        )
