"""The multiple-instance person detector: a subject in a few regions is not averaged away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from scancap.caption import mil
from scancap.caption.grounding import (
    BOTH_REGIONS,
    REGIONS,
    Detector,
    Grounding,
    pooled,
    side_by_side,
    soft_maximum,
)
from scancap.caption.model import MODEL_DIR, Captioner
from scancap.io import load_image
from scancap.paths import data_dir

WIDTH = 8  # features per region in the synthetic grids


def test_soft_maximum_lies_between_the_mean_and_the_maximum() -> None:
    scores = np.array([[0.0] * 48 + [5.0], [1.0] * 49])
    mild, sharp = soft_maximum(scores, 1.0), soft_maximum(scores, 50.0)
    assert scores[0].mean() < mild[0] < sharp[0] < 5.0
    assert sharp[0] > 4.9  # near the maximum
    np.testing.assert_allclose(soft_maximum(scores, 1e-4)[0], scores[0].mean(), atol=1e-2)
    np.testing.assert_allclose(mild[1], 1.0)  # equal scores pool to themselves


def one_region_grids(rng: np.random.Generator, n: int, present: bool) -> np.ndarray:
    """(n, 49, WIDTH) noise; where `present`, one random region has feature 0 raised."""
    grids = rng.normal(0.0, 1.0, (n, 49, WIDTH)).astype(np.float32)
    if present:
        grids[np.arange(n), rng.integers(0, 49, n), 0] += 6.0
    return grids


def test_mil_finds_a_subject_in_one_region_that_the_pooled_mean_hides() -> None:
    """Positives differ from negatives in one region of 49: their pooled means overlap, yet
    the MIL detector separates them; its NumPy form gives the Keras model's numbers."""
    rng = np.random.default_rng(0)
    grids = np.concatenate([one_region_grids(rng, 3000, True), one_region_grids(rng, 3000, False)])
    labels = np.repeat([1, 0], 3000)  # enough photos for the shipped number of training steps
    means = pooled(grids)[:, 0]
    assert means[labels == 1].min() < means[labels == 0].max()  # the mean cannot separate them
    mean, scale = mil.region_moments(grids)
    model = mil.fit_mil(mil.standardised(grids, mean, scale), labels, 1e-4, 4.0)
    detector = mil.as_detector(model, mean, scale)
    test = np.concatenate([one_region_grids(rng, 50, True), one_region_grids(rng, 50, False)])
    p = detector.probability(test)
    assert roc_auc_score(np.repeat([1, 0], 50), p) > 0.99
    keras_logits = np.ravel(model.predict(mil.standardised(test, mean, scale), verbose=0))
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-keras_logits)), rtol=1e-4, atol=1e-5)


def test_out_of_fold_probabilities_come_from_detectors_that_never_saw_the_photo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each photo is left out of exactly one of the folds' fits, and its probability comes
    from that fit; the probabilities still rank the subject."""
    rng = np.random.default_rng(1)
    grids = np.concatenate([one_region_grids(rng, 3000, True), one_region_grids(rng, 3000, False)])
    labels = np.repeat([1, 0], 3000)
    photo_of = {value: i for i, value in enumerate(grids[:, 1, 1])}  # noise: unique per photo
    assert len(photo_of) == len(grids)
    fitted_on, fit = [], mil.fit_detector

    def recording(train: np.ndarray, *args, rows: np.ndarray, **kwargs) -> Detector:
        fitted_on.append({photo_of[value] for value in train[rows, 1, 1]})
        return fit(train, *args, rows=rows, **kwargs)

    monkeypatch.setattr(mil, "fit_detector", recording)
    p = mil.out_of_fold(grids, labels, 1e-4, 4.0, folds=4)
    assert len(fitted_on) == 4
    times_seen = np.array([sum(i in seen for seen in fitted_on) for i in range(len(grids))])
    assert (times_seen == 3).all()
    assert p.shape == (6000,) and ((p > 0) & (p < 1)).all()
    assert roc_auc_score(labels, p) > 0.9


def test_a_regions_detector_reads_the_grid_and_is_saved_with_its_sharpness(
    tmp_path: Path,
) -> None:
    coef = np.eye(WIDTH)[0]
    with pytest.raises(ValueError, match="sharpness"):  # the soft maximum would divide by 0
        Detector(np.zeros(WIDTH), np.ones(WIDTH), coef, -3.0, 0.5, REGIONS)
    person = Detector(np.zeros(WIDTH), np.ones(WIDTH), coef, -3.0, 0.5, REGIONS, 4.0)
    grounding = Grounding(np.zeros((WIDTH, 1000)), np.zeros(1000), {"person": person})
    small_person = np.zeros((49, WIDTH), np.float32)
    small_person[10, 0] = 6.0  # one region
    grids = np.stack([np.zeros((49, WIDTH), np.float32), small_person])
    assert not grounding.needs_lite0
    assert [e.person for e in grounding.evidence(grids)] == [False, True]
    grounding.save(tmp_path)
    loaded = Grounding.load(tmp_path, (np.zeros((WIDTH, 1000)), np.zeros(1000)))
    assert loaded.detectors["person"].reads == REGIONS
    assert loaded.detectors["person"].sharpness == 4.0
    assert [e.person for e in loaded.evidence(grids)] == [False, True]


def test_a_detector_on_both_backbones_reads_each_region_side_by_side(tmp_path: Path) -> None:
    """Each region's MobileNetV2 features, then Lite0's for the same region: Lite0's half of
    one region can make the detection, a call without the Lite0 grids is a clear error, and
    grounding.json remembers what the detector reads."""
    coef = np.concatenate([np.zeros(WIDTH), np.eye(WIDTH)[0]])  # Lite0's first feature only
    person = Detector(np.zeros(2 * WIDTH), np.ones(2 * WIDTH), coef, -3.0, 0.5, BOTH_REGIONS, 4.0)
    grounding = Grounding(np.zeros((WIDTH, 1000)), np.zeros(1000), {"person": person})
    grids = np.zeros((2, 49, WIDTH), np.float32)
    lite0 = np.zeros((2, 7, 7, WIDTH), np.float32)  # as the classifier's frozen part gives it
    lite0[1, 1, 3, 0] = 6.0  # the second photo, row 1, column 3
    assert side_by_side(grids, lite0)[1, 1 * 7 + 3, WIDTH] == 6.0  # the same region, row-major
    with pytest.raises(ValueError, match="line up"):  # pooled Lite0 features have no regions
        side_by_side(grids, lite0.mean(axis=(1, 2)))
    assert grounding.needs_lite0
    with pytest.raises(ValueError, match="lite0"):
        grounding.evidence(grids)
    assert [e.person for e in grounding.evidence(grids, lite0)] == [False, True]
    grounding.save(tmp_path)
    loaded = Grounding.load(tmp_path, (np.zeros((WIDTH, 1000)), np.zeros(1000)))
    assert loaded.detectors["person"].reads == BOTH_REGIONS
    assert [e.person for e in loaded.evidence(grids, lite0)] == [False, True]


# Select-half photos (the half the thresholds were chosen on: examples, not a measurement):
# people small behind a baseball glove, and the workmen of "Lunch atop a Skyscraper" (both missed
# by the MobileNetV2-only detector); Kodak's house fronts and red barn, with no one.
PEOPLE = ("doctype/photo/coco_like_scenes/f10ed99ae49b3e21.jpg",
          "doctype/photo/deoldify_old_photos/5307f8cfd1dd7388.jpg")  # fmt: skip
NO_ONE = ("restoration/Kodak24/kodim08.png", "restoration/Kodak24/kodim22.png")


@pytest.mark.skipif(not (MODEL_DIR / "grounding.json").exists(), reason="no shipped grounding")
def test_the_shipped_person_detector_reads_both_backbones_regions_and_finds_small_people() -> None:
    captioner = Captioner.load()
    assert captioner.grounding.detectors["person"].reads == BOTH_REGIONS
    paths = [data_dir() / name for name in PEOPLE + NO_ONE]
    if not all(path.exists() for path in paths):
        pytest.skip(f"the labelled photos are not in {data_dir()}")
    images = [load_image(path) for path in paths]
    grain = captioner.grain_of(images)
    evidence = captioner.grounding.evidence(
        captioner.grids(images), captioner.lite0_grids(images), grain, captioner.detect(images)[1]
    )
    assert [e.person for e in evidence] == [True, True, False, False]


def test_a_degraded_copy_trains_with_its_photo_and_is_never_held_out() -> None:
    """With copies (rows n..2n-1 copy rows 0..n-1), every fold trains a photo and its copy
    together and holds out photos only: no photo is scored by a detector that saw its copy."""
    labels = np.repeat([1, 0], [30, 70])
    n = len(labels)
    plain = mil.fold_splits(labels, 5)
    with_copies = mil.fold_splits(labels, 5, copies=True)
    for (fit, held), (fit_both, held_both) in zip(plain, with_copies, strict=True):
        np.testing.assert_array_equal(held, held_both)  # the same photos held out as before
        assert held_both.max() < n  # never a copy
        np.testing.assert_array_equal(np.sort(fit_both), np.sort(np.concatenate([fit, fit + n])))
        assert not set(fit_both) & set(held_both + n)  # a held photo's copy is not trained on
    held_out = np.concatenate([held for _, held in with_copies])
    assert sorted(held_out) == list(range(n))  # each photo held out exactly once


@pytest.mark.parametrize("stream", [False, True])
def test_a_detector_fit_on_rows_is_the_one_fit_on_a_copy_of_them(stream: bool) -> None:
    """Folds name their rows instead of copying the grids (memory): the detector is the same,
    in memory or streamed."""
    rng = np.random.default_rng(2)
    grids = np.concatenate([one_region_grids(rng, 150, True), one_region_grids(rng, 150, False)])
    labels = np.repeat([1, 0], 150)
    rows = np.sort(rng.permutation(300)[:200])
    half = grids.astype(np.float16)
    on_rows = mil.fit_detector(half, labels[rows], 1e-3, 4.0, rows=rows, stream=stream)
    on_copy = mil.fit_detector(half[rows], labels[rows], 1e-3, 4.0, stream=stream)
    np.testing.assert_allclose(on_rows.mean, on_copy.mean, rtol=1e-5)
    np.testing.assert_allclose(on_rows.coef, on_copy.coef, rtol=1e-4, atol=1e-6)
