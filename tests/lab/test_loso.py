"""Leave-one-source-out evaluation and source-balanced training of the classifier."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scancap.classify import data as doctype
from scancap.classify.train import LOSO_RECIPE, source_weights
from scancap.paths import data_dir
from scancap_lab.classify import loso

needs_data = pytest.mark.skipif(
    not (data_dir() / doctype.MANIFEST).exists(), reason="needs the shared doctype data set"
)


def test_source_weighting_equalises_sources_and_keeps_label_totals() -> None:
    labels = np.array([0] * 100 + [0] * 10 + [1] * 30)
    sources = np.array(["big"] * 100 + ["small"] * 10 + ["other"] * 30)
    assert source_weights(labels, sources, "count") is None
    weights = source_weights(labels, sources, "source")
    assert weights[:100].sum() == pytest.approx(weights[100:110].sum())  # one total per source
    assert weights[:110].sum() == pytest.approx(110)  # the label keeps its weight
    assert weights[110:].sum() == pytest.approx(30)
    root = source_weights(labels, sources, "sqrt")
    ratio = root[100] / root[0]  # a small source's image counts sqrt(100 / 10) times more
    assert ratio == pytest.approx(np.sqrt(10))
    with pytest.raises(ValueError, match="unknown source weighting"):
        source_weights(labels, sources, "labels")


def predictions_of(outcomes: dict[tuple[str, str], list[bool]]) -> pd.DataFrame:
    """A LOSO predictions frame where each (label, source) has the given right/wrong outcomes."""
    rows = []
    for (label, source), hits in outcomes.items():
        is_photo = label == "photo"
        for i, hit in enumerate(hits):
            called = is_photo == hit
            rows.append(
                {
                    "path": f"{source}/{i}.jpg",
                    "label": label,
                    "source": source,
                    "y": doctype.LABELS.index(label),
                    "p_photo": 0.9 if called else 0.1,
                    "called_photo": called,
                }
            )
    return pd.DataFrame(rows)


def test_summary_pools_images_and_names_the_worst_sources() -> None:
    frame = predictions_of(
        {
            ("photo", "landscapes"): [True] * 6 + [False] * 4,
            ("photo", "dogs"): [True] * 30,
            ("photo", "deoldify_old_photos"): [True] * 9 + [False],
            ("painting", "portraits"): [True] * 8 + [False] * 2,
            ("text", "letters"): [True] * 10,
        }
    )
    table = loso.per_source(frame).set_index("source")
    assert table.loc["landscapes", "accuracy"] == pytest.approx(0.6)
    assert table.loc["landscapes", "errors"] == 4
    summary = loso.summarise(frame, rounds=200)
    assert summary.accuracy[0] == pytest.approx(63 / 70)
    assert summary.photo_recall[0] == pytest.approx(45 / 50)
    assert summary.paintings_kept_out[0] == pytest.approx(0.8)
    assert summary.old_photo_recall[0] == pytest.approx(0.9)
    assert summary.worst_photo_source == ("landscapes", pytest.approx(0.6))
    assert summary.source_mean_accuracy == pytest.approx((0.6 + 1 + 0.9 + 0.8 + 1) / 5)
    low, high = summary.photo_recall[1:]
    assert low < 0.9 < high  # sources disagree, so resampling them gives a real interval
    assert loso.criterion(summary) == (pytest.approx(0.86), pytest.approx(0.6))


@needs_data
def test_a_fold_never_trains_or_calibrates_on_its_held_out_source(
    doctype_subset_cache: Path,
) -> None:
    split = doctype.limit_split(doctype.make_split(doctype.load_manifest()), 3)
    split = split.assign(y=split["label"].map(doctype.LABELS.index))
    cache = doctype.build_feature_cache(split, doctype_subset_cache, progress=False)  # made once
    held_out = split["source"].iloc[0]
    config = replace(LOSO_RECIPE, epochs=2)
    features = doctype.flat_features(cache)
    data = loso.fold_dataset(cache, features, config, held_out)
    in_source = (cache.index["source"] == held_out).to_numpy()
    assert len(data.train[1]) == ((cache.index["split"] == "train").to_numpy() & ~in_source).sum()
    assert held_out not in set(data.train_sources)
    held = data.evals["held_out"][1]
    assert len(held) == (split["source"] == held_out).sum()  # every image of it, clean
    fold = loso.run_fold(cache, features, config, held_out)
    assert set(fold["source"]) == {held_out} and len(fold) == len(held)
    assert fold["p_photo"].between(0, 1).all() and (fold["threshold"] >= 0.5).all()


def test_extra_training_photos_are_never_judged_in_their_sources_fold() -> None:
    index = pd.DataFrame(
        {
            "source": ["flickr8k"] * 4 + ["pacs_photo"] * 2,
            "view": ["clean", "aug1", "clean", "clean", "clean", "clean"],
            "extra": [False, False, True, True, False, False],
        }
    )
    assert loso.judged(index, "flickr8k").tolist() == [True, False, False, False, False, False]
    assert loso.judged(index.drop(columns="extra"), "flickr8k").sum() == 3


@needs_data
def test_extra_flickr8k_photos_are_train_photos_not_in_the_split() -> None:
    split = doctype.make_split(doctype.load_manifest())
    extra = doctype.extra_flickr8k_photos(split)
    assert len(extra) == 5000 and set(extra["split"]) == {"train"}
    assert not set(extra["path"]) & set(split["path"])
    assert (extra["source"] == "flickr8k").all() and (extra["y"] == doctype.PHOTO).all()


def test_with_extra_appends_rows_and_marks_them() -> None:
    def cache(n: int, start: float) -> doctype.FeatureCache:
        index = pd.DataFrame({"path": [f"{start}/{i}" for i in range(n)], "split": "train"})
        trunk = np.full((n, 2, 2, 3), start, np.float16)
        pooled, texture = np.full((n, 4), start, np.float16), np.full((n, 6), start, np.float32)
        return doctype.FeatureCache(index, trunk, pooled, texture)

    merged = doctype.with_extra(cache(3, 1.0), cache(2, 2.0))
    assert merged.index["extra"].tolist() == [False] * 3 + [True] * 2
    assert merged.trunk.shape == (5, 2, 2, 3) and merged.pooled[3:].min() == 2.0
    assert merged.texture.shape == (5, 6) and merged.texture[:3].max() == 1.0
