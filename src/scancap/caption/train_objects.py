"""The object rule's evidence, learnt from Flickr8k train (`scancap train objects`).

Each object group (`scancap.caption.objects`) gets the evidence that tells where it is there:
- a group a COCO class stands for: the COCO detector's best score over its classes, with the
  threshold that keeps the word on RECALL of the train photos whose references name it;
- a group without one, named often enough in train: a presence detector (a balanced logistic
  regression on the pooled MobileNetV2 grid, like the person and animal detectors), its
  threshold at RECALL on held-out train photos;
- the rest: no evidence (`ObjectRule.unsupported` decides them, on labelled photos).

Weak labels come from the five references: a photo is positive for a group that at least
MIN_MENTIONS of them name, negative for one that none names. Choosing thresholds in domain
keeps what Flickr8k captions need; out of domain the evidence is what forbids an invented
"car" or "grass" (rule and measures: `reports/captioning_experiments.md`, "Object words").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scancap.caption.grounding import OWN_DETECTORS, Detector, ObjectRule
from scancap.caption.objects import COCO_CLASSES, OBJECT_GROUPS, mentioned_groups
from scancap.caption.train_grounding import fit_logistic

MIN_MENTIONS = 2  # references naming a group before a photo counts as showing it
RECALL = 0.9  # share of the photos showing a group that keep its words
COCO_MIN_POSITIVES = 30  # fewer: the group keeps DEFAULT_THRESHOLD
DEFAULT_THRESHOLD = 0.20
DETECTOR_MIN_POSITIVES = 50  # fewer: no presence detector (the group has no evidence)
HELD_OUT = 0.2  # train photos kept out of a detector's fit to set its threshold
SEED = 0


@dataclass
class ObjectEvidence:
    """What `train_objects` learnt: the rule's COCO thresholds and the presence detectors."""

    thresholds: dict[str, float]
    detectors: dict[str, Detector]
    positives: dict[str, int]  # group -> weakly positive train photos

    def rule(self, unsupported: frozenset[str] = frozenset()) -> ObjectRule:
        return ObjectRule(self.thresholds, unsupported)


def weak_labels(references: Sequence[Sequence[str]]) -> pd.DataFrame:
    """(photos, groups): 1 where at least MIN_MENTIONS references name the group, 0 where none
    does, NaN otherwise."""
    rows = []
    for captions in references:
        counts: dict[str, int] = {}
        for caption in captions:
            for group in mentioned_groups(caption):
                counts[group] = counts.get(group, 0) + 1
        rows.append(
            {
                g: 1.0 if counts.get(g, 0) >= MIN_MENTIONS else 0.0 if g not in counts else np.nan
                for g in OBJECT_GROUPS
            }
        )
    return pd.DataFrame(rows, columns=list(OBJECT_GROUPS))


def group_score(coco_scores: np.ndarray, group: str) -> np.ndarray:
    """(N,) the best of a group's COCO class scores in each photo."""
    columns = [COCO_CLASSES.index(c) for c in OBJECT_GROUPS[group].coco]
    return np.asarray(coco_scores)[:, columns].max(axis=1)


def recall_threshold(scores: np.ndarray) -> float:
    """The score that RECALL of `scores` (those of photos showing the group) reach."""
    return float(np.quantile(scores, 1.0 - RECALL))


def coco_thresholds(labels: pd.DataFrame, coco_scores: np.ndarray) -> dict[str, float]:
    """Each COCO-backed group's threshold: RECALL of its positives keep the word."""
    thresholds = {}
    for group in OBJECT_GROUPS.values():
        if not group.coco or group.name in OWN_DETECTORS:
            continue
        positive = labels[group.name].eq(1).to_numpy()
        enough = positive.sum() >= COCO_MIN_POSITIVES
        scores = group_score(coco_scores, group.name)[positive]
        thresholds[group.name] = recall_threshold(scores) if enough else DEFAULT_THRESHOLD
    return thresholds


def presence_detectors(
    labels: pd.DataFrame, features: np.ndarray, keep: Sequence[str] = ()
) -> dict[str, Detector]:
    """A presence detector per group without a COCO class and with DETECTOR_MIN_POSITIVES
    positives (groups in `keep` have one already): fit on most of the labelled photos, its
    threshold at RECALL among the held-out positives."""
    rng = np.random.default_rng(SEED)
    held_out = rng.random(len(labels)) < HELD_OUT
    detectors = {}
    for group in OBJECT_GROUPS.values():
        if group.coco or group.name in OWN_DETECTORS or group.name in keep:
            continue
        y = labels[group.name].to_numpy()
        known = ~np.isnan(y)
        if (y[known] == 1).sum() < DETECTOR_MIN_POSITIVES:
            continue
        fit = known & ~held_out
        detector = fit_logistic(features[fit], y[fit].astype(int))
        check = known & held_out & (y == 1)
        threshold = recall_threshold(detector.probability(features[check]))
        detectors[group.name] = Detector(detector.mean, detector.scale, detector.coef,
                                         detector.intercept, threshold)  # fmt: skip
    return detectors


def train_objects(
    references: Sequence[Sequence[str]],
    features: np.ndarray,
    coco_scores: np.ndarray,
    keep: Sequence[str] = (),
) -> ObjectEvidence:
    """The object evidence from train photos: their references, pooled MobileNetV2 grids
    (N, 1280) and (N, 80) COCO class scores; `keep`: detectors the grounding has already
    (the flower detector)."""
    labels = weak_labels(references)
    positives = {g: int(labels[g].eq(1).sum()) for g in OBJECT_GROUPS}
    return ObjectEvidence(
        coco_thresholds(labels, coco_scores),
        presence_detectors(labels, np.asarray(features, np.float32), keep),
        positives,
    )
