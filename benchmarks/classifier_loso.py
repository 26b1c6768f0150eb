"""Leave-one-source-out screening of the classifier's training recipes (the v9 selection).

    python benchmarks/classifier_loso.py                      # every weighting, all 36 sources
    python benchmarks/classifier_loso.py --weightings source --sources flare_portraits tf_flowers

A candidate is a source weighting, optionally followed by "+flickr8k" (the unused Flickr8k train
photos as extra training rows, v10). From v11 on, every candidate's head reads the texture
statistics of `TEXTURE_LAYERS` too (the feature cache holds them); the v11 screen, which added
them to v10's recipe as the candidate "source+flickr8k+layers", is recorded in
`source+flickr8k+layers.csv` and `selection_v11.md`. The CSVs of earlier candidates were made
without them, and a run resumes from its CSV: rename one to screen that candidate again.

Each candidate's per-image LOSO predictions go to reports/classification_loso/<weighting>.csv,
written after every fold so an interrupted run resumes where it stopped; the summary of all
candidates, and the one the rule in reports/classification_experiments.md selects, to
reports/classification_loso/selection.md.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from scancap.classify.data import (
    LABELS,
    FeatureCache,
    build_feature_cache,
    extra_flickr8k_photos,
    flat_features,
    load_manifest,
    make_split,
    with_extra,
)
from scancap.classify.metrics import format_interval, markdown_table
from scancap.classify.train import LOSO_RECIPE, SOURCE_WEIGHTINGS
from scancap.io import atomic_write_text
from scancap_lab.classify import loso
from scancap_lab.paths import reports_dir

OUT = reports_dir() / "classification_loso"


EXTRA = "+flickr8k"  # a candidate named "<weighting>+flickr8k" also trains on the extra photos


def screen(
    candidate: str, cache: FeatureCache, features: loso.Features, sources: list[str], out: Path
) -> pd.DataFrame:
    """LOSO predictions of one candidate, resuming from its CSV."""
    path = out / f"{candidate}.csv"
    done = pd.read_csv(path) if path.exists() else pd.DataFrame()
    config = replace(LOSO_RECIPE, source_weighting=candidate.split("+")[0])
    for source in sources:
        if not done.empty and source in set(done["source"]):
            continue
        fold = loso.run_fold(cache, features, config, source)
        done = pd.concat([done, fold], ignore_index=True)
        atomic_write_text(path, done.to_csv(index=False, float_format="%.5g"))
        print(f"{candidate}: {source} held out, accuracy {loso.correct(fold).mean():.4f}")
    return done[done["source"].isin(sources)]


def with_extra_photos(
    split: pd.DataFrame, cache: FeatureCache, features: loso.Features
) -> tuple[FeatureCache, loso.Features]:
    """The cache and features with the unused Flickr8k train photos added (marked `extra`)."""
    extra = build_feature_cache(extra_flickr8k_photos(split))
    merged = tuple(
        np.concatenate(pair) for pair in zip(features, flat_features(extra), strict=True)
    )
    return with_extra(cache, extra), merged


def summary_row(weighting: str, predictions: pd.DataFrame) -> dict[str, object]:
    summary = loso.summarise(predictions)
    mean, worst_photo = loso.criterion(summary)
    return {
        "weighting": weighting,
        "mean source accuracy": mean,
        "worst photo source": f"{summary.worst_photo_source[0]} {worst_photo:.4f}",
        "pooled accuracy": format_interval(summary.accuracy),
        "photo recall": format_interval(summary.photo_recall),
        "paintings kept out": format_interval(summary.paintings_kept_out),
        "old-photo recall": format_interval(summary.old_photo_recall),
        "worst source": f"{summary.worst_source[0]} {summary.worst_source[1]:.4f}",
    }


def choose(rows: list[dict[str, object]]) -> str:
    """The rule: best mean source accuracy; within 0.005 of it, the best worst photo source."""
    best = max(row["mean source accuracy"] for row in rows)
    close = [row for row in rows if best - row["mean source accuracy"] <= 0.005]
    return max(close, key=lambda row: float(row["worst photo source"].split()[-1]))["weighting"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weightings", nargs="+", default=list(SOURCE_WEIGHTINGS))
    parser.add_argument("--sources", nargs="+", help="held-out sources (default: all)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--summary", default="selection.md", help="summary file in --out (v10: selection_v10.md)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    split = make_split(load_manifest())
    split = split.assign(y=split["label"].map(LABELS.index))
    cache = build_feature_cache(split)
    features = flat_features(cache)
    sources = args.sources or sorted(split["source"].unique())
    rows = []
    for candidate in args.weightings:
        data = (cache, features)
        if EXTRA in candidate:
            data = with_extra_photos(split, cache, features)
        rows.append(summary_row(candidate, screen(candidate, *data, sources, args.out)))
    chosen = choose(rows)
    table = pd.DataFrame(rows).assign(
        chosen=lambda f: (f["weighting"] == chosen).map({True: "yes", False: ""})
    )
    text = (
        "# Classifier: leave-one-source-out screening\n\n"
        f"{len(sources)} held-out sources; one head per fold (seed 42) of the v6 recipe; "
        "intervals resample whole sources. Rule: `reports/classification_experiments.md`.\n\n"
        f"{markdown_table(table, index=False)}\n"
    )
    atomic_write_text(args.out / args.summary, text)
    print(text)


if __name__ == "__main__":
    main()
