"""Leave-one-source-out probes: cheap screens of classifier ideas before a full LOSO run.

    python benchmarks/classifier_probe.py                  # every probe
    python benchmarks/classifier_probe.py base dro:0.5     # some of them

A full LOSO run of the recipe (`classifier_loso.py`) takes about 25 minutes per candidate. A
probe takes under two: a logistic regression (C 0.01) on the standardised clean-view features
the head reads (texture statistics and the pooled Lite0 grid), trained on the training images
of 35 sources with the shipped source weighting ("source") and the extra Flickr8k photos, then
deciding every clean image of the 36th at p(photo) >= 0.5. It ranks ideas, it ships nothing:
its numbers are not the recipe's (no augmented views, no calibration, no val threshold).

Probes (`reports/classification_experiments.md` has the rule they were read by):
- `base`: the features as shipped;
- `texture`: the texture statistics alone (does the pooled grid, the content, help at all?);
- `mobilenet`: the pooled MobileNetV2 grid (the captioner's backbone) beside them;
- `content:K:CAP`: within each of K k-means clusters of the pooled grid (fit on the fold's
  training images), photos and non-photos carry equal weight, each factor capped at CAP:
  content balanced across the photo / not-photo line;
- `stylised`: copies of up to 100 training photos per photo source, painted by OpenCV's
  `stylization` filter, as paintings (a fold drops the copies of its held-out source's photos);
- `dro:ETA`: group DRO by reweighting: three refits, each raising the weight of every source
  by exp(ETA x its mean training loss / the worst source's);
- `scale:SIZE`: the same features from Lite0 run on the image resized to SIZE instead of 224
  (finer texture: brush strokes, film grain); `scales:SIZE`: both sets side by side;
- `gram`: beside the features, the Gram matrices of four texture layers (GRAM_LAYERS), the
  style representation of neural style transfer: channel correlations over positions.

Writes reports/classification_loso/probes.csv (accuracy per held-out source and probe; probes
run before and not now are kept) and probes.md. Extra features are cached under cache/probe/.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from scancap.backbones.efficientnet_lite import (
    LITE0_PATH,
    build_lite0,
    load_lite0,
    set_lite0_weights,
)
from scancap.backbones.inputs import to_model_input
from scancap.classify.data import (
    LABELS,
    SPLIT_SEED,
    build_feature_cache,
    channel_stats,
    default_cache_dir,
    feature_model,
    flat_features,
    load_manifest,
    make_split,
)
from scancap.classify.metrics import markdown_table
from scancap.classify.train import source_weights
from scancap.io import atomic_write_text, load_image
from scancap.paths import data_dir, reports_dir

sys.path.insert(0, str(Path(__file__).parent))
from classifier_loso import with_extra_photos  # noqa: E402

OUT = reports_dir() / "classification_loso"
PROBES = ("base", "texture", "mobilenet", "content:30:4", "stylised", "dro:0.5", "dro:1",
          "scale:320", "scales:320", "gram")  # fmt: skip
C = 0.01
# Each probe kind and how many ":"-separated values follow its name.
ARGUMENTS = {"base": 0, "texture": 0, "mobilenet": 0, "stylised": 0, "content": 2, "dro": 1,
             "scale": 1, "scales": 1, "gram": 0}  # fmt: skip
TEXTURE_COLUMNS = slice(0, 960)  # flat_features puts the texture statistics first
STYLISED_PER_SOURCE = 100
DRO_ROUNDS = 3
SEED = 0
PAINTING = LABELS.index("painting")
GRAM_LAYERS = ("stem_relu", "block_2_out", "block_4_out", "block_7_out")  # 32, 24, 40, 80 channels


class Probe:
    """The clean views of every image (manifest and extra Flickr8k photos) and their features."""

    def __init__(self) -> None:
        split = make_split(load_manifest())
        split = split.assign(y=split["label"].map(LABELS.index))
        cache = build_feature_cache(split)
        cache, features = with_extra_photos(split, cache, flat_features(cache))
        clean = (cache.index["view"] == "clean").to_numpy()
        self.index = cache.index[clean].reset_index(drop=True)
        self.x = np.hstack(features)[clean].astype(np.float32)
        self.photo = (self.index["label"] == "photo").to_numpy()
        self.extra = self.index["extra"].to_numpy(bool)
        self.split = split

    def fold(self, held_out: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows that train (the other sources' training images) and rows that are judged."""
        source = self.index["source"].to_numpy()
        train = (source != held_out) & (self.index["split"] == "train").to_numpy()
        return train, (source == held_out) & ~self.extra


def cached(name: str, paths: list[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Features of `paths`, computed once and kept under cache/probe/ by a hash of the paths."""
    key = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
    path = default_cache_dir() / "probe" / f"{name}-{key}.npy"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.npy")
        np.save(partial, compute(paths))
        partial.replace(path)  # an interrupted run leaves no truncated cache
    return np.load(path)


def mobilenet_features(paths: list[str]) -> np.ndarray:
    """(N, 1280) pooled MobileNetV2 grids (the captioner's backbone) of image files."""
    from scancap.caption.grounding import pooled
    from scancap.caption.model import Captioner

    captioner = Captioner.load()
    chunks = [
        pooled(captioner.grids([load_image(data_dir() / p) for p in paths[i : i + 64]]))
        for i in range(0, len(paths), 64)
    ]
    return np.concatenate(chunks).astype(np.float32)


def lite0_features(size: int) -> Callable[[list[str]], np.ndarray]:
    """The head's flat features of image files, Lite0 run at size x size."""

    def compute(paths: list[str]) -> np.ndarray:
        backbone = build_lite0(include_top=False, input_shape=(size, size, 3))
        with np.load(LITE0_PATH) as stored:
            set_lite0_weights(backbone, {k: stored[k] for k in stored.files})
        model, rows = feature_model(backbone), []
        for i in range(0, len(paths), 32):
            images = [load_image(data_dir() / p) for p in paths[i : i + 32]]
            batch = np.stack([to_model_input(image, size) for image in images])
            trunk, pooled, texture = model.predict_on_batch(batch)
            rows.append(np.hstack([channel_stats(trunk), texture, pooled]))
        return np.concatenate(rows).astype(np.float32)

    return compute


def gram_features(paths: list[str]) -> np.ndarray:
    """(N, 4888) upper triangles of the Gram matrices G = FᵀF / positions of GRAM_LAYERS,
    Lite0 at 224 as shipped (Gatys, Ecker and Bethge 2016: style apart from content)."""
    backbone = load_lite0()
    model = keras.Model(backbone.input, [backbone.get_layer(n).output for n in GRAM_LAYERS])
    rows = []
    for i in range(0, len(paths), 32):
        batch = np.stack([to_model_input(load_image(data_dir() / p)) for p in paths[i : i + 32]])
        grams = []
        for grid in model.predict_on_batch(batch):
            flat = np.asarray(grid, np.float32).reshape(len(batch), -1, grid.shape[-1])
            gram = np.einsum("npc,npd->ncd", flat, flat) / flat.shape[1]
            upper = np.triu_indices(grid.shape[-1])
            grams.append(gram[:, upper[0], upper[1]])
        rows.append(np.hstack(grams))
    return np.concatenate(rows).astype(np.float32)


def stylised(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A photo painted by OpenCV's edge-preserving stylisation (at most 448 px long)."""
    scale = 448 / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.stylization(
        image, sigma_s=float(rng.uniform(30, 90)), sigma_r=float(rng.uniform(0.3, 0.6))
    )


def stylised_features(paths: list[str]) -> np.ndarray:
    """The head's flat features (texture statistics, pooled grid) of stylised photos."""
    model, rng, rows = feature_model(), np.random.default_rng(SEED), []
    for i in range(0, len(paths), 64):
        batch = [
            to_model_input(stylised(load_image(data_dir() / p), rng)) for p in paths[i : i + 64]
        ]
        trunk, pooled, texture = model.predict_on_batch(np.stack(batch))
        rows.append(np.hstack([channel_stats(trunk), texture, pooled]))
    return np.concatenate(rows).astype(np.float32)


def stylised_photos(probe: Probe) -> tuple[pd.DataFrame, np.ndarray]:
    """Up to STYLISED_PER_SOURCE training photos per photo source, and their stylised features."""
    photos = probe.split[(probe.split["split"] == "train") & (probe.split["label"] == "photo")]
    chosen = photos.groupby("source").sample(frac=1.0, random_state=SPLIT_SEED)
    chosen = chosen.groupby("source").head(STYLISED_PER_SOURCE).reset_index(drop=True)
    return chosen, cached("stylised", list(chosen["path"]), stylised_features)


def content_factors(pooled: np.ndarray, photo: np.ndarray, k: int, cap: float) -> np.ndarray:
    """Weight factors that give photos and non-photos equal weight within each content cluster."""
    unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    clusters = KMeans(k, n_init=2, random_state=SEED).fit_predict(unit)
    factors = np.ones(len(pooled))
    for cluster in range(k):
        members = clusters == cluster
        photos, others = (members & photo).sum(), (members & ~photo).sum()
        if photos and others:
            half = (photos + others) / 2
            factors[members & photo] = np.clip(half / photos, 1 / cap, cap)
            factors[members & ~photo] = np.clip(half / others, 1 / cap, cap)
    return factors


def fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=300).fit(x, y, sample_weight=weights / weights.mean())


def dro_refits(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, sources: np.ndarray, eta: float
) -> LogisticRegression:
    """Refit DRO_ROUNDS times, each time raising the weight of the sources the model fits worst."""
    model, group = fit(x, y, weights), pd.Series(1.0, index=np.unique(sources))
    for _ in range(DRO_ROUNDS):
        p_true = model.predict_proba(x)[np.arange(len(y)), y.astype(int)]
        loss = pd.Series(-np.log(np.clip(p_true, 1e-6, 1.0))).groupby(sources).mean()
        group = group * np.exp(eta * loss / loss.max())
        model = fit(x, y, weights * pd.Series(sources).map(group / group.mean()).to_numpy())
    return model


def run_probe(probe: Probe, name: str, extras: dict[str, object]) -> pd.Series:
    """Accuracy on each held-out source of the named probe."""
    kind, *args = name.split(":")
    x = {
        "texture": probe.x[:, TEXTURE_COLUMNS],
        "mobilenet": extras.get("mobilenet"),
        "gram": extras.get("gram"),
    }.get(kind)
    if kind in ("scale", "scales"):
        x = extras[f"{kind}:{args[0]}"]
    x = probe.x if x is None else x
    accuracy = {}
    for held_out in sorted(probe.index["source"].unique()):
        train, judged = probe.fold(held_out)
        x_train, photo = x[train], probe.photo[train]
        labels, sources = (
            probe.index["y"].to_numpy()[train],
            probe.index["source"].to_numpy()[train],
        )
        if kind == "stylised":
            parents, painted = extras["stylised"]
            keep = (parents["source"] != held_out).to_numpy()
            x_train = np.vstack([x_train, painted[keep]])
            photo = np.concatenate([photo, np.zeros(keep.sum(), bool)])
            labels = np.concatenate([labels, np.full(keep.sum(), PAINTING)])
            sources = np.concatenate([sources, np.full(keep.sum(), "stylised_photos")])
        weights = source_weights(labels, sources, "source").astype(np.float64)
        if kind == "content":
            pooled = x_train[:, TEXTURE_COLUMNS.stop :]
            weights = weights * content_factors(pooled, photo, int(args[0]), float(args[1]))
        scaler = StandardScaler().fit(x_train)
        z = scaler.transform(x_train)
        model = (
            dro_refits(z, photo, weights, sources, float(args[0]))
            if kind == "dro"
            else fit(z, photo, weights)
        )
        called = model.predict_proba(scaler.transform(x[judged]))[:, 1] >= 0.5
        accuracy[held_out] = float(np.mean(called == probe.photo[judged]))
        print(f"{name}: {held_out} {accuracy[held_out]:.3f}", flush=True)
    return pd.Series(accuracy, name=name)


def summary(table: pd.DataFrame, labels: pd.Series) -> pd.DataFrame:
    """Per probe: mean accuracy over held-out sources, over photo and painting sources, worst."""
    rows = []
    for name in table.columns:
        scores = table[name]
        rows.append({
            "probe": name,
            "mean source accuracy": round(scores.mean(), 4),
            "vs base": f"{scores.mean() - table['base'].mean():+.4f}" if "base" in table else "",
            "photo sources": round(scores[labels[scores.index] == "photo"].mean(), 4),
            "painting sources": round(scores[labels[scores.index] == "painting"].mean(), 4),
            "worst source": f"{scores.idxmin()} {scores.min():.3f}",
        })  # fmt: skip
    return pd.DataFrame(rows)


def report(rows: pd.DataFrame) -> str:
    return (
        "# Classifier: leave-one-source-out probes\n\n"
        "Generated by `benchmarks/classifier_probe.py`: a source-balanced logistic regression "
        f"(C {C}) on the clean views' features, each of the 36 sources held out in turn, "
        "decided at p(photo) >= 0.5; seeds 0 (k-means, stylisation) and 42 (split). A screen, "
        "not the recipe: a probe that beats `base` by more than 0.005 earns a full LOSO run "
        "(`reports/classification_experiments.md`).\n\n" + markdown_table(rows, index=False) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probes", nargs="*", default=list(PROBES))
    args = parser.parse_args()
    for name in args.probes:
        kind, *values = name.split(":")
        if kind not in ARGUMENTS or len(values) != ARGUMENTS[kind]:
            parser.error(f"unknown probe {name!r}; probes look like {', '.join(PROBES)}")
    probe = Probe()
    extras: dict[str, object] = {}
    if "mobilenet" in args.probes:
        mobilenet = cached("mobilenet", list(probe.index["path"]), mobilenet_features)
        extras["mobilenet"] = np.hstack([probe.x, mobilenet])
    if "gram" in args.probes:
        grams = cached("gram", list(probe.index["path"]), gram_features)
        extras["gram"] = np.hstack([probe.x, grams])
    if "stylised" in args.probes:
        extras["stylised"] = stylised_photos(probe)
    for size in {int(name.split(":")[1]) for name in args.probes if name.startswith("scale")}:
        scaled = cached(f"lite0-{size}", list(probe.index["path"]), lite0_features(size))
        extras[f"scale:{size}"], extras[f"scales:{size}"] = scaled, np.hstack([probe.x, scaled])
    table = pd.concat([run_probe(probe, name, extras) for name in args.probes], axis=1)
    OUT.mkdir(parents=True, exist_ok=True)
    if (OUT / "probes.csv").exists():  # the probes run before, but those run again now
        earlier = pd.read_csv(OUT / "probes.csv", index_col=0)
        table = pd.concat([earlier.drop(columns=table.columns, errors="ignore"), table], axis=1)
    atomic_write_text(OUT / "probes.csv", table.to_csv(float_format="%.4f"))
    labels = probe.index.groupby("source")["label"].first()
    atomic_write_text(OUT / "probes.md", report(summary(table, labels)))
    print(f"wrote {OUT / 'probes.md'}")


if __name__ == "__main__":
    main()
