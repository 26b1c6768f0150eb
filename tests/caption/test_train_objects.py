"""The object rule's evidence learnt from references: weak labels, COCO thresholds at the
target recall, presence detectors for groups no COCO class covers."""

from __future__ import annotations

import numpy as np
import pytest

from scancap.caption.objects import COCO_CLASSES
from scancap.caption.train_objects import (
    COCO_MIN_POSITIVES,
    DEFAULT_THRESHOLD,
    DETECTOR_MIN_POSITIVES,
    RECALL,
    coco_thresholds,
    train_objects,
    weak_labels,
)


def test_a_group_is_shown_where_two_references_name_it_and_absent_where_none_does() -> None:
    labels = weak_labels([["a dog on the grass", "two dogs on grass", "a dog", "a car", "a dog"]])
    assert labels.loc[0, "dog"] == 1 and labels.loc[0, "grass"] == 1
    assert np.isnan(labels.loc[0, "car"])  # one reference: not sure either way
    assert labels.loc[0, "water"] == 0


def test_a_coco_threshold_keeps_the_word_on_the_target_share_of_photos_showing_it() -> None:
    n = 200
    references = [["a red car on a road"] * 2] * n + [["a man on a beach"] * 2] * n
    scores = np.zeros((2 * n, len(COCO_CLASSES)), np.float32)
    car = COCO_CLASSES.index("car")
    scores[:n, car] = np.linspace(0.05, 0.95, n)  # the cars' scores
    thresholds = coco_thresholds(weak_labels(references), scores)
    kept = (scores[:n, car] >= thresholds["car"]).mean()
    assert kept == pytest.approx(RECALL, abs=0.01)
    assert thresholds["bench"] == DEFAULT_THRESHOLD  # no photo shows one
    assert COCO_MIN_POSITIVES > 0


def test_a_group_without_a_coco_class_gets_a_detector_that_finds_it() -> None:
    rng = np.random.default_rng(0)
    n = 4 * DETECTOR_MIN_POSITIVES
    snowy = rng.random(n) < 0.5
    features = rng.normal(size=(n, 8)).astype(np.float32)
    features[snowy, 0] += 3.0  # one feature tells snow
    references = [["a dog in the snow"] * 2 if s else ["a dog on a bed"] * 2 for s in snowy]
    evidence = train_objects(references, features, np.zeros((n, len(COCO_CLASSES))))
    detector = evidence.detectors["snow"]
    found = detector.probability(features) >= detector.threshold
    assert found[snowy].mean() > RECALL - 0.1 and found[~snowy].mean() < 0.2
    assert "bed" not in evidence.detectors  # a COCO class stands for beds
    assert evidence.positives["snow"] == snowy.sum()
    assert set(evidence.rule().thresholds) >= {"car", "dog", "bed"}


def test_train_objects_cli_writes_a_grounding_with_the_object_rule(tmp_path) -> None:
    from pathlib import Path

    from scancap.caption.grounding import Grounding
    from scancap.caption.model import Captioner
    from scancap.cli import main

    labels = Path(__file__).resolve().parents[2] / "benchmarks" / "labels" / "objects.csv"
    out, cache = tmp_path / "grounding", tmp_path / "cache"
    args = ["train", "objects", "--limit", "12", "--labels", str(labels), "--out", str(out),
            "--cache", str(cache), "--quiet"]  # fmt: skip
    assert main(args) == 0
    shipped = Captioner.load()
    grounding = Grounding.load(out, shipped.imagenet_head)
    rule = grounding.objects
    assert set(rule.thresholds) >= {"car", "dog", "bench", "boat"}
    assert all(0 < t < 1 for t in rule.thresholds.values())
    own = set(shipped.grounding.detectors) - shipped.grounding.objects.presence
    assert own <= set(grounding.detectors)  # person, animal, flowers... kept; the rest relearnt
    assert list(cache.glob("objects/flickr8k-train-*.npz"))  # the next run reads its features
