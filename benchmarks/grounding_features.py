"""Grounding detectors, third fit: which region statistics they read, and thresholds from more
negatives (rule: `reports/captioning_experiments.md`). Reads the select half of the labelled set
and Flickr8k train only; writes `reports/grounding_features.md`.

    .venv/bin/python benchmarks/grounding_features.py
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from grounding_backbones import all_five_name

from scancap.caption.data import build_feature_cache, load_captions, load_split
from scancap.caption.grounding import MOBILENET, region_features
from scancap.caption.model import Captioner
from scancap.caption.train_grounding import (
    CONCEPTS,
    FLOWER_SOURCES,
    FOLDS,
    LABELS_FILE,
    SAMPLES,
    SEED,
    LabelledPhotos,
    caption_labels,
    fit_concept,
    load_labelled,
    lowest_threshold,
    not_near,
    pooled_features,
    source_photos,
)
from scancap.io import load_image
from scancap.paths import REPO_ROOT, data_dir

REPORT = REPO_ROOT / "reports" / "grounding_features.md"
STATISTICS = ("mean", "mean+max")
BUDGETS = (0.05, 0.04, 0.03, 0.02, 0.01)  # false-positive budgets q of the operating point
UNION_LIMIT = 0.05  # on the select half: either detector fires on photos with neither


def main() -> None:
    data = data_dir()
    captioner = Captioner.load()
    head = captioner.imagenet_head
    images = load_split("train", data)
    captions = load_captions(data)
    labels = caption_labels(captions, images)
    all_person = all_five_name(captions, images)
    flickr_grids = build_feature_cache(images, None, data, progress=False).grids
    select = load_labelled("select")
    select = select.assign(flower=select["source"].isin(FLOWER_SOURCES).astype(int))
    photos = source_photos(data, set(pd.read_csv(LABELS_FILE)["path"]), None)
    extra_grids = captioner.grids([load_image(data / p) for p in photos["path"]])
    sample_grids = captioner.grids(
        [load_image(p) for p in sorted(SAMPLES.iterdir()) if p.suffix.lower() in {".jpg", ".png"}]
    )
    kept = not_near(region_features(extra_grids, "mean"), region_features(sample_grids, "mean"))
    extra_grids, photos = extra_grids[kept], photos[kept].reset_index(drop=True)
    select_grids = captioner.grids([load_image(data / p) for p in select["path"]])
    rows, scores = [], {}
    for statistics in STATISTICS:
        flickr = pooled_features(flickr_grids, statistics)
        extra = region_features(extra_grids, statistics)
        chosen = region_features(select_grids, statistics)
        for concept in CONCEPTS:
            fit = fit_concept(
                concept,
                LabelledPhotos(flickr, labels),
                LabelledPhotos(extra, photos),
                LabelledPhotos(chosen, select),
                head,
                reads=MOBILENET,
            )
            truth = select[concept].to_numpy()
            negatives = fit.p_sources[photos[concept].to_numpy() == 0]
            on_select = lowest_threshold(fit.p_select[truth == 0])
            on_sources = lowest_threshold(negatives)
            threshold = max(on_select, on_sources)
            scores[statistics, concept] = (fit.p_select, negatives)
            row = {
                "statistics": statistics,
                "detector": concept,
                "C": fit.c,
                "select ROC-AUC": fit.select_auc,
                "threshold (select)": on_select,
                "threshold (sources, out of fold)": on_sources,
                "threshold": threshold,
                "select recall": float(np.mean(fit.p_select[truth == 1] >= threshold)),
                "select false positives": float(np.mean(fit.p_select[truth == 0] >= threshold)),
            }
            if concept == "person":
                p_flickr = fit.p_flickr[all_person[fit.known]]
                row["Flickr8k recall (5/5 captions, out of fold)"] = float(
                    np.mean(p_flickr >= threshold)
                )
                scores[statistics, "flickr8k person"] = p_flickr
            rows.append(row)
            print(row, flush=True)
    points = operating_points(scores, select)
    print(points, flush=True)
    write_report(pd.DataFrame(rows), points)


def operating_points(scores: dict, select: pd.DataFrame) -> pd.DataFrame:
    """Per budget q: both detectors' thresholds at q, the select half's union rate and
    recalls, and the person detector's Flickr8k recall (the mean statistics)."""
    neither = ((select["person"] == 0) & (select["animal"] == 0)).to_numpy()
    rows = []
    for q in BUDGETS:
        row, fires = {"budget q": q}, np.zeros(len(select), bool)
        for concept in ("person", "animal"):
            p_select, p_sources = scores["mean", concept]
            truth = select[concept].to_numpy()
            threshold = max(
                lowest_threshold(p_select[truth == 0], q), lowest_threshold(p_sources, q)
            )
            fires |= p_select >= threshold
            row[f"{concept} threshold"] = threshold
            row[f"{concept} select recall"] = float(np.mean(p_select[truth == 1] >= threshold))
            if concept == "person":
                row["Flickr8k person recall"] = float(
                    np.mean(scores["mean", "flickr8k person"] >= threshold)
                )
        row["select union rate"] = float(fires[neither].mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    within = table[table["select union rate"] <= UNION_LIMIT]
    table["chosen"] = table["budget q"] == (within["budget q"].max() if len(within) else None)
    return table


def markdown(table: pd.DataFrame) -> str:
    columns = list(table.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table.itertuples(index=False):
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells).replace("nan", "") + " |")
    return "\n".join(lines)


def write_report(table: pd.DataFrame, points: pd.DataFrame) -> None:
    REPORT.write_text(
        "# Grounding detectors: region statistics and thresholds\n\n"
        "Generated by `benchmarks/grounding_features.py` (select half of "
        "`benchmarks/labels/caption_ood.csv` and Flickr8k train only; seed "
        f"{SEED}, {FOLDS} folds). Rule: `reports/captioning_experiments.md`.\n\n"
        "## Region statistics\n\n"
        f"{markdown(table)}\n\n"
        "## Operating point (region means)\n\n"
        f"Both detectors at the same false-positive budget q; chosen: the largest q whose "
        f"select union rate is at most {UNION_LIMIT}.\n\n"
        f"{markdown(points)}\n"
    )


if __name__ == "__main__":
    sys.exit(main())
