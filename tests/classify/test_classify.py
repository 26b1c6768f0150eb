"""The photo-or-not classifier: calibration logic, data split, the shipped model, CLI, training."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from scancap.classify import data as doctype
from scancap.classify import model as classify
from scancap.cli import main
from scancap.paths import data_dir, models_dir
from scancap_lab.paths import REPO_ROOT

SAMPLES = REPO_ROOT / "samples"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png"})
needs_data = pytest.mark.skipif(
    not (data_dir() / doctype.MANIFEST).exists(), reason="needs the shared doctype data set"
)
needs_model = pytest.mark.skipif(
    not (classify.default_dir() / classify.MODEL_FILE).exists(), reason="no shipped classifier"
)


# --- calibration and decision ---------------------------------------------------------------------


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 3, 20_000)
    labels = rng.random(true_logits.size) < expit(true_logits)
    over_confident = 2.5 * true_logits  # what a model with temperature 2.5 would output
    assert classify.fit_temperature(over_confident, labels) == pytest.approx(2.5, rel=0.1)


def test_threshold_reaches_the_target_precision_with_the_most_recall() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(3000) < 0.35
    scores = np.clip(rng.normal(np.where(labels, 0.8, 0.35), 0.15), 0, 1)
    threshold = classify.choose_threshold(scores, labels, target=0.99)
    called = scores >= threshold
    assert labels[called].mean() >= 0.99
    assert threshold >= classify.MIN_THRESHOLD
    lower = scores[(scores < threshold) & (scores >= classify.MIN_THRESHOLD)].max()
    assert labels[scores >= lower].mean() < 0.99  # one step lower misses the target


def test_threshold_falls_back_to_the_top_score_when_the_target_is_out_of_reach() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.array([False, True, False, True])
    assert classify.choose_threshold(scores, labels) == 0.9


@pytest.mark.parametrize("ties", [False, True])
def test_metrics_equal_scikit_learns_on_random_draws(ties: bool) -> None:
    """The NumPy metrics (fast enough for a thousand bootstrap rounds) are scikit-learn's,
    with its zero-division conventions and tied scores, on small draws like a bootstrap's."""
    from sklearn import metrics as sk

    from scancap.classify.metrics import PHOTO, binary_metrics, subtype_metrics

    rng = np.random.default_rng(7)
    for _ in range(300):
        size = int(rng.integers(1, 30))
        labels, p_photo = rng.integers(0, 5, size), rng.random(size)
        p_photo = np.round(p_photo, 1) if ties else p_photo
        probabilities, threshold = rng.random((size, 5)), float(rng.random())
        truth, called, predicted = labels == PHOTO, p_photo >= threshold, probabilities.argmax(1)
        expected = {
            "accuracy": sk.accuracy_score(truth, called),
            "precision": sk.precision_score(truth, called, zero_division=1.0),
            "recall": sk.recall_score(truth, called, zero_division=0.0),
            "f1": sk.f1_score(truth, called, zero_division=0.0),
            "subtype_accuracy": sk.accuracy_score(labels, predicted),
            "subtype_macro_f1": sk.f1_score(
                labels, predicted, labels=range(5), average="macro", zero_division=0.0
            ),
        }
        if 0 < truth.sum() < size:
            expected["roc_auc"] = sk.roc_auc_score(truth, p_photo)
            expected["average_precision"] = sk.average_precision_score(truth, p_photo)
        measured = binary_metrics(labels, p_photo, threshold) | subtype_metrics(
            labels, probabilities
        )
        assert {k: measured[k] for k in expected} == pytest.approx(expected, abs=1e-12)


def test_non_photos_are_routed_to_a_non_photo_subtype() -> None:
    calibration = classify.Calibration(temperature=1.0, threshold=0.9)
    photo_logits = np.array([0.0, 5.0])  # p = 0.5 (below threshold), 0.993
    subtype_logits = np.array([[9.0, 1.0, 0.0, 0.0, 0.0], [9.0, 1.0, 0.0, 0.0, 0.0]])
    below, above = classify.decide(photo_logits, subtype_logits, calibration)
    assert (below.is_photo, below.subtype) == (False, "painting")
    assert (above.is_photo, above.subtype) == (True, "photo")
    assert sum(below.subtype_probabilities.values()) == pytest.approx(1.0)


def test_channel_stats_are_mean_and_std_per_channel() -> None:
    grid = np.random.default_rng(2).random((3, 14, 14, 96), dtype=np.float32)
    stats = np.asarray(classify.ChannelStats()(grid))
    np.testing.assert_allclose(stats[:, :96], grid.mean(axis=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(stats[:, 96:], grid.std(axis=(1, 2)), atol=1e-3)


def test_texture_statistics_are_the_named_layers_channel_statistics() -> None:
    """The feature model's texture output: each TEXTURE_LAYERS layer's channel mean and
    standard deviation, in order, TEXTURE_DIM values (what the cache stores and heads read)."""
    import keras
    import skimage.data

    from scancap.backbones.efficientnet_lite import load_lite0
    from scancap.backbones.inputs import to_model_input

    backbone = load_lite0()
    images = np.stack(
        [to_model_input(skimage.data.chelsea()), to_model_input(skimage.data.coffee())]
    )
    _, _, texture = doctype.feature_model(backbone).predict_on_batch(images)
    assert texture.shape == (2, doctype.TEXTURE_DIM)
    grids = keras.Model(
        backbone.input, [backbone.get_layer(n).output for n in doctype.TEXTURE_LAYERS]
    ).predict_on_batch(images)
    expected = np.hstack([np.asarray(classify.ChannelStats()(g)) for g in grids])
    np.testing.assert_allclose(texture, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(texture[0], texture[1], rtol=0.1)


# --- data -----------------------------------------------------------------------------------------


@needs_data
def test_split_is_stratified_disjoint_and_reproducible() -> None:
    manifest = doctype.load_manifest()
    split = doctype.make_split(manifest)
    assert split.equals(doctype.make_split(manifest))
    assert split["path"].is_unique and len(split) == len(manifest)
    by_source = split.groupby(["label", "source"])["split"]
    shares = by_source.value_counts(normalize=True).unstack().fillna(0.0)
    large = by_source.size() >= 100  # smaller sources cannot hold 70/15/15 to within 2%
    assert ((shares["train"] - 0.70).abs()[large] < 0.02).all()
    assert ((shares["test"] - 0.15).abs()[large] < 0.02).all()
    assert (shares.loc[by_source.size() >= doctype.MIN_STRATUM] > 0).all().all()


@needs_data
@needs_model
def test_shipped_split_is_the_one_make_split_gives() -> None:
    shipped = pd.read_csv(classify.default_dir() / doctype.SPLIT_FILE)
    assert shipped.equals(doctype.make_split(doctype.load_manifest()))


def test_augmented_views_are_seeded_uint8_rgb() -> None:
    image = np.random.default_rng(3).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    first = doctype.view_of(image, "a.jpg", "aug1")
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    np.testing.assert_array_equal(first, doctype.view_of(image, "a.jpg", "aug1"))
    assert not np.array_equal(first, doctype.view_of(image, "a.jpg", "aug2"))
    gray = doctype.view_of(image, "a.jpg", "gray")
    assert (gray[..., 0] == gray[..., 2]).all()


# --- the shipped model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier() -> classify.Classifier:
    return classify.Classifier.load()


# v11 (chosen by leave-one-source-out accuracy, reports/classification_experiments.md) calls
# this grey studio portrait a painting at p(photo) = 0.70, just under its threshold of 0.72: a
# known miss, reported in reports/classification.md; v10 called it a photo.
KNOWN_MISSES = {"photo_David_Hilbert.png"}


@needs_model
@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, marks=pytest.mark.xfail(strict=True, reason="known miss"))
        if path.name in KNOWN_MISSES
        else path
        for path in SAMPLE_FILES
    ],
    ids=lambda p: p.stem[:40],
)
def test_shipped_classifier_labels_the_sample_correctly(
    classifier: classify.Classifier, path: Path
) -> None:
    [(_, result)] = classifier.predict_files([path])
    assert result.is_photo == path.name.startswith("photo_"), (result.p_photo, result.subtype)
    assert result.subtype == path.name.split("_")[0]


@needs_model
@pytest.mark.slow
def test_features_path_matches_the_image_path(classifier: classify.Classifier) -> None:
    """The cached-features path (training, evaluation) gives the image path's verdicts."""
    from scancap.backbones.inputs import to_model_input
    from scancap.io import load_image

    images = [load_image(p) for p in SAMPLE_FILES[:4]]
    direct = classifier.predict(images)
    batch = np.stack([to_model_input(image) for image in images])
    shared = classifier.predict_from_features(classifier.features(batch))
    for a, b in zip(direct, shared, strict=True):
        assert a.p_photo == pytest.approx(b.p_photo, abs=1e-5)
        assert a.subtype == b.subtype


@needs_model
@pytest.mark.slow
def test_cli_classify_reports_a_corrupt_file_and_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "in" / "nested"
    folder.mkdir(parents=True)
    for path in SAMPLE_FILES[:5]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out.csv"
    code = main(["classify", str(tmp_path / "in"), "--out", str(out), "--quiet"])
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert code == 1
    assert list(table.columns) == ["path", "is_photo", "p_photo", "subtype", "error", "file"]
    assert len(table) == 6
    for name, file in zip(table["path"], table["file"], strict=True):  # found from anywhere
        assert Path(file).is_absolute() and Path(file) == (tmp_path / "in" / name).absolute()
    broken = table[table["path"].str.endswith("broken.jpg")].iloc[0]
    assert broken["error"] and broken["is_photo"] == "" and broken["p_photo"] == ""
    fine = table[table["error"] == ""]
    assert len(fine) == 5
    assert set(fine["is_photo"]) <= {"true", "false"}
    assert set(fine["subtype"]) <= set(doctype.LABELS)
    assert fine["p_photo"].astype(float).between(0, 1).all()


@needs_model
@pytest.mark.slow
def test_cli_threshold_overrides_the_calibrated_one(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    photo = next(p for p in SAMPLE_FILES if p.name.startswith("photo_"))
    assert main(["classify", str(photo), "--out", str(out), "--threshold", "1", "--quiet"]) == 0
    row = pd.read_csv(out, dtype=str, keep_default_na=False).iloc[0]
    assert row["is_photo"] == "false" or float(row["p_photo"]) == 1.0


# --- training -------------------------------------------------------------------------------------


@needs_data
@pytest.mark.slow
def test_training_smoke_on_a_tiny_subset_leaves_the_shipped_model_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, doctype_subset_cache: Path
) -> None:
    """The README's smoke-test form, without --out: a dated folder under runs/, and models/
    byte for byte as it was. One epoch per run; the subset's features come from the run's
    shared cache (conftest), so the backbone does not run again here."""
    from datetime import date

    import scancap.cli.options

    monkeypatch.setattr(scancap.cli.options, "RUNS_DIR", tmp_path / "runs")
    shipped = tree_digest(models_dir())
    args = ["train", "classifier", "--limit", "3", "--epochs", "1", "--quiet"]
    assert main([*args, "--cache", str(doctype_subset_cache)]) == 0
    assert tree_digest(models_dir()) == shipped
    out = tmp_path / "runs" / f"{date.today().isoformat()}-classifier"
    files = {p.name for p in out.iterdir()}
    assert {"classifier.keras", "calibration.json", "split.csv", "model_card.md"} <= files
    assert len(pd.read_csv(out / "split.csv")) == 3 * 5 * 3
    trained = classify.Classifier.load(out)
    predictions = trained.predict([np.full((50, 80, 3), 200, np.uint8)])
    assert 0.0 <= predictions[0].p_photo <= 1.0


def test_training_refuses_the_shipped_folder_without_replace_shipped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shipped = tree_digest(models_dir())
    args = ["train", "classifier", "--limit", "3", "--out", str(models_dir() / "classifier")]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "--replace-shipped" in error and "Traceback" not in error
    assert tree_digest(models_dir()) == shipped


def tree_digest(folder: Path) -> str:
    """One hash of every file's relative path and bytes under a folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_clean_view_weighting_balances_clean_and_augmented_views() -> None:
    from dataclasses import replace

    from scancap.classify.train import SHIPPED, view_weights

    views = np.array(["clean", "aug1", "aug2", "aug3"] * 10)
    assert view_weights(views, SHIPPED) is None  # the default recipe weighs views alike
    weights = view_weights(views, replace(SHIPPED, clean_weight=3.0))
    assert weights.mean() == pytest.approx(1.0)
    clean = views == "clean"
    assert weights[clean].sum() == pytest.approx(weights[~clean].sum())  # 10 x 3 = 30 x 1


# --- the report's unseen-source check -------------------------------------------------------------


@needs_data
@needs_model
@pytest.mark.slow
def test_unseen_source_check_reads_every_listed_image(classifier: classify.Classifier) -> None:
    """Every image of the unseen-source table still ships where it is looked for, is decoded
    (PNG with alpha, grey, palette, JPEG) and is scored against its label."""
    from scancap_lab.classify.evaluate import UNSEEN_NON_PHOTOS, UNSEEN_PHOTOS, unseen_table

    table = unseen_table(classifier, data_dir())
    listed = sum(len(files) for files in (*UNSEEN_PHOTOS.values(), *UNSEEN_NON_PHOTOS.values()))
    assert len(table) == listed
    assert table["p_photo"].between(0, 1).all()
    assert (table["correct"] == (table["is_photo"] == (table["class"] == "photo"))).all()
    assert table["correct"].mean() >= 0.8


@needs_data
@needs_model
@pytest.mark.slow
def test_photos_from_new_sources_are_called_photos(classifier: classify.Classifier) -> None:
    """The 104 benchmark photos (colour and grey) are each scored, and nine in ten at least
    are called photos; the last row adds the three sources up."""
    from scancap_lab.classify.evaluate import NEW_SOURCE_PHOTOS, new_source_photo_recall

    table = new_source_photo_recall(classifier, data_dir())
    assert list(table["source"]) == [*NEW_SOURCE_PHOTOS, "all three"]
    per_source, total = table.iloc[:-1], table.iloc[-1]
    assert total["photos"] == per_source["photos"].sum() == 104
    assert total["called photo"] == per_source["called photo"].sum()
    assert total["called photo"] / total["photos"] >= 0.9


# --- the val-only screens (benchmarks/classifier_screens.py) --------------------------------------


def test_screen_statistics_are_what_the_shipped_head_computes() -> None:
    """Leave-one-source-out heads train on precomputed statistics (`channel_stats`): they must
    equal the head's own ChannelStats on the float16 grids of the feature cache, or a fold
    would judge candidates on other inputs than the shipped model's."""
    import skimage.data

    from scancap.backbones.inputs import to_model_input

    page = np.repeat(skimage.data.page()[..., None], 3, axis=-1)
    images = np.stack([to_model_input(skimage.data.chelsea()), to_model_input(page)])
    grids, pooled = doctype.feature_model(texture_layers=()).predict_on_batch(images)
    _, top = doctype.feature_model(texture_layers=(), pool_top=False).predict_on_batch(images)
    assert top.shape == (2, 7, 7, 1280)  # what the caption grounding reads, unpooled
    np.testing.assert_allclose(np.asarray(top).mean(axis=(1, 2)), pooled, rtol=1e-4, atol=1e-5)
    stats = doctype.channel_stats(np.asarray(grids).astype(np.float16))
    flat = np.concatenate([stats, np.asarray(pooled, np.float16).astype(np.float32)], -1)
    cached = grids.astype(np.float16).astype(np.float32)
    head_stats = np.asarray(classify.ChannelStats()(cached))
    assert flat.shape == (2, 2 * 112 + 1280)
    np.testing.assert_allclose(flat[:, : 2 * 112], head_stats, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flat[:, 2 * 112 :], pooled, rtol=1e-3, atol=1e-5)
    assert not np.allclose(flat[0], flat[1], rtol=0.1)  # a cat and a text page differ
