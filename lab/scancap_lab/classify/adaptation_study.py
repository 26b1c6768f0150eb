"""The adaptation study: review queues and corrections on archives of held-out sources.

Its rule is in `reports/classification_experiments.md` ("Adaptation from a person's
corrections"): base decisions are each image's leave-one-source-out decision by the shipped
recipe; a simulated reviewer labels the first k items of a queue; an adaptation spreads those
labels; scores count the items nobody reviewed. `benchmarks/classifier_adapt.py` runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logit

from scancap.classify.adapt import (
    Propagation,
    margin_order,
    margin_residuals,
    propagated,
    unit_rows,
)
from scancap_lab.classify.loso import OLD_PHOTO_SOURCES
from scancap_lab.paths import REPORTS

LOSO_PREDICTIONS = REPORTS / "classification_loso" / "source+flickr8k+layers.csv"
KS = (0, 5, 10, 20, 40)
ARCHIVES = 100
ARCHIVE_SIZE = 500
SOURCES_PER_ARCHIVE = 3
LIMIT = max(KS)


def base_table(manifest: pd.DataFrame, pooled: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The LOSO predictions joined to the features, row for row: path, label, source, margin."""
    loso = pd.read_csv(LOSO_PREDICTIONS)
    order = pd.Series(np.arange(len(manifest)), index=manifest["path"])
    rows = order.loc[loso["path"]].to_numpy()
    p = np.clip(loso["p_photo"].to_numpy(np.float64), 1e-12, 1 - 1e-12)
    table = loso[["path", "label", "source"]].assign(
        margin=logit(p) - logit(loso["threshold"].to_numpy(np.float64)),
        threshold_logit=logit(loso["threshold"].to_numpy(np.float64)),
        is_photo=(loso["label"] == "photo").to_numpy(),
    )
    return table.reset_index(drop=True), unit_rows(pooled[rows])


def halves(table: pd.DataFrame, seed: int = 0) -> dict[str, list[str]]:
    """Sources split in two by label: each label's sources sorted, shuffled, alternated."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {"select": [], "report": []}
    for _, group in table.groupby("label"):
        sources = sorted(group["source"].unique())
        rng.shuffle(sources)
        for i, source in enumerate(sources):
            parts["select" if i % 2 == 0 else "report"].append(source)
    return parts


def mixed_archives(
    table: pd.DataFrame, sources: list[str], count: int = ARCHIVES
) -> Iterator[np.ndarray]:
    """Row indices of `count` archives: 3 sources at random, then up to 500 of their items."""
    for seed in range(count):
        rng = np.random.default_rng(seed)
        chosen = rng.choice(sorted(sources), SOURCES_PER_ARCHIVE, replace=False)
        rows = np.flatnonzero(table["source"].isin(chosen).to_numpy())
        if len(rows) > ARCHIVE_SIZE:
            rows = np.sort(rng.choice(rows, ARCHIVE_SIZE, replace=False))
        yield rows


def single_archives(table: pd.DataFrame, sources: list[str]) -> Iterator[tuple[str, np.ndarray]]:
    """Each source alone, up to 500 of its items (seed 0)."""
    for source in sorted(sources):
        rows = np.flatnonzero((table["source"] == source).to_numpy())
        if len(rows) > ARCHIVE_SIZE:
            rows = np.sort(np.random.default_rng(0).choice(rows, ARCHIVE_SIZE, replace=False))
        yield source, rows


# --- queues and adaptations -----------------------------------------------------------------------


def cover_order(features: np.ndarray, limit: int, weights: np.ndarray | None = None) -> np.ndarray:
    """The first `limit` items of a review queue by greedy facility location.

    Each next item is the one whose addition most raises the (weighted) sum over every item of
    its similarity to the nearest chosen item: the centre of the largest group of look-alikes
    not yet represented comes first. Similarities are cosines clipped at 0.
    """
    unit = unit_rows(features)
    n = len(unit)
    limit = min(limit, n)
    weights = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    similarity = np.clip(unit @ unit.T, 0.0, None).astype(np.float64)
    covered = np.zeros(n)
    chosen: list[int] = []
    for _ in range(limit):
        gains = (np.maximum(similarity, covered[None, :]) - covered[None, :]) @ weights
        gains[chosen] = -np.inf
        best = int(np.argmax(gains))
        chosen.append(best)
        covered = np.maximum(covered, similarity[best])
    return np.array(chosen, dtype=int)


def margin_weights(margins: np.ndarray) -> np.ndarray:
    """How much an item asks to be represented: 1 / (1 + |margin|), the uncertain most."""
    return 1.0 / (1.0 + np.abs(np.asarray(margins, np.float64)))


Queue = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (features, margins, seed) -> order


def random_queue(features: np.ndarray, margins: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(1000 + seed).permutation(len(margins))[:LIMIT]


QUEUES: dict[str, Queue] = {
    "margin": lambda features, margins, seed: margin_order(margins)[:LIMIT],
    "random": random_queue,
    "cover": lambda features, margins, seed: cover_order(features, LIMIT),
    "cover-margin": lambda features, margins, seed: cover_order(
        features, LIMIT, margin_weights(margins)
    ),
}

Adapt = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
# (features, margins, reviewed rows, their true is_photo) -> adapted margins of every item


def no_adaptation(features, margins, reviewed, truth):  # noqa: ANN001, ANN201
    return margins


def nearest(similarity: float) -> Adapt:
    def adapt(features, margins, reviewed, truth):  # noqa: ANN001, ANN202
        if not len(reviewed):
            return margins
        cosine = features @ features[reviewed].T
        best = cosine.argmax(axis=1)
        close = cosine[np.arange(len(features)), best] >= similarity
        labelled = np.where(truth[best], 1.0, -1.0) * np.maximum(np.abs(margins), 1.0)
        return np.where(close, labelled, margins)

    return adapt


def propagation(settings: Propagation) -> Adapt:
    def adapt(features, margins, reviewed, truth):  # noqa: ANN001, ANN202
        if not len(reviewed):
            return margins
        residuals = margin_residuals(margins[reviewed], truth, settings.target)[:, None]
        return margins + propagated(features, features[reviewed], residuals, settings)[:, 0]

    return adapt


# The rule's grids: the first round, then the second (extended where the first's best sat).
GRIDS = {
    1: {"h": (0.05, 0.1, 0.2), "T": (2.0, 4.0, 8.0), "λ": (0.1, 1.0)},
    2: {"h": (0.2, 0.3, 0.5, 1.0), "T": (8.0, 16.0, 32.0), "λ": (0.1, 1.0, 10.0)},
}


def adaptations(round_: int = 1) -> dict[str, Adapt]:
    """Every candidate of a round of the rule, by name (`nearest` in the first round only)."""
    candidates: dict[str, Adapt] = {"none": no_adaptation}
    if round_ == 1:
        for s in (0.7, 0.8, 0.9):
            candidates[f"nearest s={s}"] = nearest(s)
    grid = GRIDS[round_]
    for h in grid["h"]:
        for t in grid["T"]:
            for ridge in grid["λ"]:
                name = f"propagate h={h} T={t:g} λ={ridge:g}"
                candidates[name] = propagation(Propagation(h, t, ridge))
    return candidates


# --- scores ---------------------------------------------------------------------------------------


def scores(table: pd.DataFrame, rows: np.ndarray, called_photo: np.ndarray) -> dict[str, float]:
    """Accuracy, photo recall, paintings kept out and old-photo recall of `rows`' decisions."""
    label = table["label"].to_numpy()[rows]
    truth = label == "photo"
    old = table["source"].isin(OLD_PHOTO_SOURCES).to_numpy()[rows]

    def share(mask: np.ndarray, values: np.ndarray) -> float:
        return float(values[mask].mean()) if mask.any() else np.nan

    return {
        "accuracy": float((called_photo == truth).mean()) if len(rows) else np.nan,
        "photo recall": share(truth, called_photo),
        "paintings kept out": share(label == "painting", ~called_photo),
        "old-photo recall": share(old, called_photo),
    }


def run_archive(
    table: pd.DataFrame,
    features: np.ndarray,
    rows: np.ndarray,
    seed: int,
    queues: dict[str, Queue],
    adapts: dict[str, Adapt],
) -> list[dict[str, object]]:
    """Every (queue, adaptation, k) on one archive: one row of scores each."""
    margins = table["margin"].to_numpy()[rows]
    truth = table["is_photo"].to_numpy()[rows]
    archive = features[rows]
    records = []
    for queue_name, queue in queues.items():
        order = queue(archive, margins, seed)
        for k in KS:
            reviewed = order[:k]
            rest = np.setdiff1d(np.arange(len(rows)), reviewed)
            for adapt_name, adapt in adapts.items():
                if k == 0 and adapt_name != "none":
                    continue  # at k = 0 every adaptation is the base
                adapted = adapt(archive, margins, reviewed, truth[reviewed])
                records.append(
                    {"queue": queue_name, "adaptation": adapt_name, "k": k, "archive": seed}
                    | scores(table, rows[rest], adapted[rest] > 0)
                )
    return records


def risk_coverage(
    table: pd.DataFrame, features: np.ndarray, rows: np.ndarray, seed: int, queues: list[str]
) -> list[dict[str, object]]:
    """Accuracy of the automatic decisions when the top x% of a queue go to review."""
    margins = table["margin"].to_numpy()[rows]
    truth = table["is_photo"].to_numpy()[rows]
    records = []
    for name in queues:
        limit = int(np.ceil(0.2 * len(rows)))
        if name.startswith("cover"):
            weights = margin_weights(margins) if name == "cover-margin" else None
            order = cover_order(features[rows], limit, weights)
        elif name == "margin":
            order = margin_order(margins)
        else:
            order = np.random.default_rng(1000 + seed).permutation(len(rows))
        for share in (0.01, 0.02, 0.05, 0.10, 0.20):
            sent = order[: int(np.ceil(share * len(rows)))]
            rest = np.setdiff1d(np.arange(len(rows)), sent)
            accuracy = float(((margins[rest] > 0) == truth[rest]).mean())
            records.append({"queue": name, "share": share, "archive": seed, "accuracy": accuracy})
    return records


def bootstrap_mean(values: np.ndarray, rounds: int = 1000, seed: int = 0) -> tuple[float, ...]:
    """Mean and 95% percentile interval over archives."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    if not len(values):
        return (np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, (rounds, len(values))).mean(axis=1)
    return float(values.mean()), *map(float, np.percentile(means, [2.5, 97.5]))


@dataclass
class Choice:
    """What the select half chose: a queue, an adaptation, and their score."""

    queue: str
    adaptation: str
    at_20: float
    at_40: float


def choose(results: pd.DataFrame) -> Choice:
    """The rule: highest mean accuracy at k = 20; within 0.002, higher at k = 40; then simpler
    (fewer settings: none < nearest < propagate, and the earlier name)."""
    means = results.groupby(["queue", "adaptation", "k"])["accuracy"].mean().unstack("k")
    best = means[20].max()
    near = means[means[20] >= best - 0.002]
    top = near[40].max()
    tied = near[near[40] >= top - 1e-12].reset_index()
    simplicity = tied["adaptation"].map(
        lambda name: 0 if name == "none" else 1 if name.startswith("nearest") else 2
    )
    ranked = tied.assign(simplicity=simplicity).sort_values(["simplicity", "queue", "adaptation"])
    row = ranked.iloc[0]
    return Choice(row["queue"], row["adaptation"], float(row[20]), float(row[40]))
