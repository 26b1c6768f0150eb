"""The object rule's evidence, learnt from Flickr8k train (`scancap train objects`).

Each object group (`scancap.caption.objects`) gets the evidence that tells where it is there:
- a group a COCO class stands for: the COCO detector's best score over its classes, with the
  threshold that keeps the word on RECALL of the train photos whose references name it;
- a group without one, named often enough in train: a presence detector (a balanced logistic
  regression on the pooled MobileNetV2 grid, like the person and animal detectors, its
  regularisation chosen by held-out log-loss), its threshold at RECALL on held-out photos;
- the rest: no evidence (`ObjectRule.unsupported` decides them, on labelled photos).

Weak labels come from the five references: a photo is positive for a group that at least
MIN_MENTIONS of them name, negative for one that none names. Choosing thresholds in domain
keeps what Flickr8k captions need; out of domain the evidence is what forbids an invented
"car" or "grass" (rule and measures: `reports/captioning_experiments.md`, "Object words").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss
from tqdm import tqdm

from scancap.caption.data import FLICKR, load_captions, load_split, references
from scancap.caption.grounding import OWN_DETECTORS, Detector, Grounding, ObjectRule
from scancap.caption.metrics import chair, group_precision
from scancap.caption.model import Captioner
from scancap.caption.objects import COCO_CLASSES, OBJECT_GROUPS, mentioned_groups
from scancap.caption.train_grounding import REGULARISATION, fit_logistic
from scancap.io import load_image
from scancap.paths import cache_dir, data_dir

MIN_MENTIONS = 2  # references naming a group before a photo counts as showing it
RECALL = 0.8  # share of the photos showing a group that keep its words (chosen: see the module doc)
COCO_MIN_POSITIVES = 30  # fewer: the group keeps DEFAULT_THRESHOLD
DEFAULT_THRESHOLD = 0.20
DETECTOR_MIN_POSITIVES = 50  # fewer: no presence detector (the group has no evidence)
HELD_OUT = 0.2  # train photos kept out of a detector's fit to set its threshold
SEED = 0
MIN_SAID = 3  # mentions on labelled photos before a group without evidence may be allowed
PRECISION_FLOOR = 0.75  # ... and the share of them that must be right
ROUNDS = 3
CHUNK = 32  # photos decoded and run through the models at a time


@dataclass
class ObjectEvidence:
    """What `train_objects` learnt: the rule's COCO thresholds and the presence detectors."""

    thresholds: dict[str, float]
    detectors: dict[str, Detector]
    positives: dict[str, int]  # group -> weakly positive train photos

    def rule(self, unsupported: frozenset[str] = frozenset()) -> ObjectRule:
        return ObjectRule(self.thresholds, unsupported, frozenset(self.detectors))


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


def recall_threshold(scores: np.ndarray, recall: float = RECALL) -> float:
    """The score that `recall` of `scores` (those of photos showing the group) reach."""
    return float(np.quantile(scores, 1.0 - recall))


def coco_thresholds(
    labels: pd.DataFrame, coco_scores: np.ndarray, recall: float = RECALL
) -> dict[str, float]:
    """Each COCO-backed group's threshold: `recall` of its positives keep the word."""
    thresholds = {}
    for group in OBJECT_GROUPS.values():
        if not group.coco or group.name in OWN_DETECTORS:
            continue
        positive = labels[group.name].eq(1).to_numpy()
        enough = positive.sum() >= COCO_MIN_POSITIVES
        scores = group_score(coco_scores, group.name)[positive]
        thresholds[group.name] = recall_threshold(scores, recall) if enough else DEFAULT_THRESHOLD
    return thresholds


def presence_detectors(
    labels: pd.DataFrame, features: np.ndarray, keep: Sequence[str] = (), recall: float = RECALL
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
        fit, check = known & ~held_out, known & held_out
        detector = least_held_out_loss(features, y, fit, check)
        threshold = recall_threshold(detector.probability(features[check & (y == 1)]), recall)
        detectors[group.name] = Detector(detector.mean, detector.scale, detector.coef,
                                         detector.intercept, threshold)  # fmt: skip
    return detectors


def least_held_out_loss(
    features: np.ndarray, y: np.ndarray, fit: np.ndarray, check: np.ndarray
) -> Detector:
    """The detector fitted on `fit` whose C (REGULARISATION) gives the lowest log-loss on
    `check`: an overfitted one gives held-out positives probabilities near 0."""
    fits = [fit_logistic(features[fit], y[fit].astype(int), c) for c in REGULARISATION]
    held = y[check].astype(int)
    losses = [log_loss(held, d.probability(features[check]), labels=[0, 1]) for d in fits]
    return fits[int(np.argmin(losses))]


def train_objects(
    references: Sequence[Sequence[str]],
    features: np.ndarray,
    coco_scores: np.ndarray,
    keep: Sequence[str] = (),
    recall: float = RECALL,
) -> ObjectEvidence:
    """The object evidence from train photos: their references, pooled MobileNetV2 grids
    (N, 1280) and (N, 80) COCO class scores; `keep`: detectors the grounding has already
    (the flower detector); `recall`: the share of photos showing a group that keep its words."""
    labels = weak_labels(references)
    positives = {g: int(labels[g].eq(1).sum()) for g in OBJECT_GROUPS}
    return ObjectEvidence(
        coco_thresholds(labels, coco_scores, recall),
        presence_detectors(labels, np.asarray(features, np.float32), keep, recall),
        positives,
    )


def weak_groups(
    captions: list[str], visible: list[frozenset[str]], candidates: set[str]
) -> set[str]:
    """The candidate groups captions name fewer than MIN_SAID times, or rightly in fewer than
    PRECISION_FLOOR of their mentions (on labelled photos)."""
    precision = group_precision(captions, visible)
    said = precision[precision["group"].isin(candidates)]
    weak = said[(said["mentions"] < MIN_SAID) | (said["precision"] < PRECISION_FLOOR)]
    return set(weak["group"])


def decide_unsupported(
    decode: Callable[[ObjectRule], list[str]],
    visible: list[frozenset[str]],
    rule_of: Callable[[frozenset[str]], ObjectRule],
    no_evidence: set[str],
) -> tuple[frozenset[str], list[dict]]:
    """The groups without evidence that captions of labelled photos get wrong too often:
    decode with them allowed, forbid the weak ones, decode again (forbidding words moves the
    decoder to others), at most ROUNDS times. `decode` captions the labelled photos under a
    rule, `rule_of` makes the rule forbidding given groups. Returns the forbidden groups and
    each round's record."""
    unsupported: set[str] = set()
    rounds = []
    for round_ in range(1, ROUNDS + 1):
        captions = decode(rule_of(frozenset(unsupported)))
        weak = weak_groups(captions, visible, no_evidence - unsupported)
        rounds.append({"round": round_, "forbidden": sorted(weak), **chair(captions, visible)})
        if not weak:
            break
        unsupported |= weak
    return frozenset(unsupported), rounds


def cached_inputs(
    name: str,
    paths: Sequence[Path],
    compute: Callable[[list[np.ndarray]], dict[str, np.ndarray]],
    cache: Path | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """`compute` on image files a chunk at a time, concatenated and cached under a key of the
    file list (another list never reads stale arrays)."""
    key = hashlib.sha256("\n".join(map(str, paths)).encode()).hexdigest()[:16]
    file = (cache or cache_dir()) / "objects" / f"{name}-{key}.npz"
    if file.exists():
        return dict(np.load(file))
    parts: list[dict[str, np.ndarray]] = []
    for start in tqdm(range(0, len(paths), CHUNK), desc=name, unit="chunk", disable=not progress):
        parts.append(compute([load_image(p) for p in paths[start : start + CHUNK]]))
    arrays = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_suffix(".tmp.npz")
    np.savez(temporary, **arrays)
    temporary.replace(file)
    return arrays


def train_inputs(captioner: Captioner, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """What the evidence is learnt from: pooled MobileNetV2 grids and COCO class scores."""
    return {"pooled": captioner.grids(images).mean(axis=1), "objects": captioner.detect(images)[1]}


def decoding_inputs(captioner: Captioner, images: list[np.ndarray]) -> dict[str, np.ndarray]:
    """What grounded decoding reads of photos: grids, Lite0 grids, grain, COCO class scores."""
    return {
        "grids": captioner.grids(images).astype(np.float16),
        "lite0": captioner.lite0_grids(images).astype(np.float16),
        "grain": np.asarray(captioner.grain_of(images), np.float64),
        "objects": captioner.detect(images)[1],
    }


def caption_with(
    captioner: Captioner, inputs: dict[str, np.ndarray], rule: ObjectRule | None, beam: int = 3
) -> list[str]:
    """Grounded captions of photos (their `decoding_inputs`) under an object rule."""
    captioner.grounding.objects = rule
    captions = captioner.describe(
        np.asarray(inputs["grids"], np.float32), beam,
        lite0=np.asarray(inputs["lite0"], np.float32), grain=list(inputs["grain"]),
        objects=inputs["objects"],
    )  # fmt: skip
    return [c.text for c in captions]


def train_object_rule(
    labels_file: Path,
    model_dir: Path | None = None,
    data: Path | None = None,
    cache_dir: Path | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> Grounding:
    """The captioner's grounding with the object rule: evidence learnt from Flickr8k train
    (the first `limit` photos), the groups without evidence decided on the select half of
    `labels_file` (hand labels: path, objects separated by ";", part)."""
    data = data or data_dir()
    captioner = Captioner.load(model_dir)
    images = load_split("train", data, limit)
    refs = references(load_captions(data), images)
    paths = [data / FLICKR / "images" / name for name in images]
    train = cached_inputs("flickr8k-train", paths, partial(train_inputs, captioner), cache_dir,
                          progress)  # fmt: skip
    grounding = captioner.grounding
    learnt = grounding.objects.presence if grounding.objects else frozenset()
    base = {name: d for name, d in grounding.detectors.items() if name not in learnt}
    evidence = train_objects([refs[n] for n in images], train["pooled"], train["objects"],
                             keep=list(base))  # fmt: skip
    grounding.detectors = {**base, **evidence.detectors}  # learnt again, not kept twice
    labelled = pd.read_csv(labels_file, keep_default_na=False)
    select = labelled[labelled["part"] == "select"].head(limit or None)
    visible = [frozenset(filter(None, text.split(";"))) for text in select["objects"]]
    inputs = cached_inputs("labelled-select", [data / p for p in select["path"]],
                           partial(decoding_inputs, captioner), cache_dir, progress)  # fmt: skip
    # Decided already: by the COCO detector, a learnt detector, or the grounding's own (flowers).
    decided = set(evidence.thresholds) | set(grounding.detectors) | OWN_DETECTORS
    unsupported, _ = decide_unsupported(
        partial(caption_with, captioner, inputs), visible, evidence.rule,
        set(OBJECT_GROUPS) - decided,
    )  # fmt: skip
    grounding.objects = evidence.rule(unsupported)
    return grounding
