"""Grouped held-out sources: does fine-tuning Lite0's top blocks generalise better than the head?

    .venv/bin/python benchmarks/classifier_grouped_loso.py            # 4 groups, both recipes
    .venv/bin/python benchmarks/classifier_grouped_loso.py --groups 0 # one group

A fine-tuned fit takes minutes, so the 36 leave-one-source-out folds are out of reach; here the
sources are dealt into GROUPS groups (`source_groups`) and each group is held out in turn. Per
fold, the LOSO recipe's head is trained on the other groups' training views (the trunk grid in,
as the shipped transfer head reads it), then blocks 11-15 and the head are fine-tuned from it
(`FINETUNE`); each is calibrated and thresholded on the other groups' val images and decides
every clean image of the held-out group. The rule these numbers are read by is in
`reports/classification_experiments.md` ("An eighth screen").

Writes reports/classification_loso/grouped.csv (per image, recipe and fold; an interrupted run
resumes from it) and grouped.md.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import pandas as pd

from scancap.classify import loso
from scancap.classify.data import (
    LABELS,
    FeatureCache,
    build_feature_cache,
    extra_flickr8k_photos,
    head_inputs,
    load_manifest,
    make_split,
    with_extra,
)
from scancap.classify.metrics import format_interval, markdown_table
from scancap.classify.train import LOSO_RECIPE, Dataset, build_model, fit
from scancap.io import atomic_write_text
from scancap.paths import reports_dir

OUT = reports_dir() / "classification_loso"
GROUPS = 4
FINETUNE = replace(
    LOSO_RECIPE, kind="finetuned", epochs=4, patience=2, batch_size=64, learning_rate=1e-4
)
RECIPES = ("head", "finetuned")
MARGIN = 0.005  # the rule: the candidate must beat the head's mean source accuracy by more


def source_groups(split: pd.DataFrame, groups: int = GROUPS) -> dict[str, int]:
    """Each source's group: within each label, largest source first, dealt round-robin, the
    count carrying on across labels so that the groups' sizes stay close."""
    sizes = split.groupby(["label", "source"]).size().rename("images").reset_index()
    ordered = sizes.sort_values(["label", "images", "source"], ascending=[True, False, True])
    return {source: i % groups for i, source in enumerate(ordered["source"])}


def fold_datasets(cache: FeatureCache, held: set[str]) -> tuple[dict[str, Dataset], np.ndarray]:
    """Both recipes' data for one fold (trunk grids read once), and which rows are judged."""
    index = cache.index
    other = ~index["source"].isin(held).to_numpy()
    clean = (index["view"] == "clean").to_numpy()
    split = index["split"].to_numpy()
    extra = index["extra"].to_numpy(bool)
    train = np.flatnonzero(other & (split == "train"))  # every view: the recipes augment
    judged = index["source"].isin(held).to_numpy() & clean & ~extra
    parts = {
        "train": train,
        "val": np.flatnonzero(other & (split == "val") & clean),
        "held_out": np.flatnonzero(judged),
    }
    arrays = {
        name: (
            np.asarray(cache.trunk[rows]),
            np.asarray(cache.pooled[rows], np.float32),
            np.asarray(cache.texture[rows], np.float32),
        )
        for name, rows in parts.items()
    }
    labels = {name: index["y"].to_numpy()[rows] for name, rows in parts.items()}

    def dataset(kind: str) -> Dataset:
        take = {name: (head_inputs(kind, *arrays[name]), labels[name]) for name in parts}
        evals = {name: take[name] for name in ("val", "held_out")}
        views, sources = (index[c].to_numpy()[train] for c in ("view", "source"))
        return Dataset(take["train"], evals, views, sources)

    return {"transfer": dataset("transfer"), "finetuned": dataset("finetuned")}, judged


def run_group(cache: FeatureCache, held: set[str], group: int) -> pd.DataFrame:
    """Both recipes' decisions on one held-out group."""
    data, judged = fold_datasets(cache, held)
    rows = cache.index[judged]
    head = build_model(LOSO_RECIPE, data["transfer"])
    _, head_seconds = fit(head, LOSO_RECIPE, data["transfer"])
    decided = [loso.decide(head, data["transfer"], rows, head_seconds).assign(recipe="head")]
    top = build_model(FINETUNE, data["finetuned"], head_weights=head)
    _, top_seconds = fit(top, FINETUNE, data["finetuned"], verbose=2)
    tuned = loso.decide(top, data["finetuned"], rows, top_seconds)
    decided.append(tuned.assign(recipe="finetuned"))
    return pd.concat(decided, ignore_index=True).assign(group=group)


def summary_rows(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per recipe: the LOSO criterion and the pooled measures over the held-out groups."""
    rows = []
    for recipe in RECIPES:
        chosen = predictions[predictions["recipe"] == recipe]
        if chosen.empty:
            continue
        summary = loso.summarise(chosen)
        sources = loso.per_source(chosen)
        rows.append(
            {
                "recipe": recipe,
                "mean source accuracy": round(summary.source_mean_accuracy, 4),
                "photo sources": round(sources.loc[sources.label == "photo", "accuracy"].mean(), 4),
                "painting sources": round(
                    sources.loc[sources.label == "painting", "accuracy"].mean(), 4
                ),
                "pooled accuracy": format_interval(summary.accuracy),
                "worst photo source": "{} {:.4f}".format(*summary.worst_photo_source),
                "fit seconds per group": round(
                    chosen.groupby("group")["fold_seconds"].first().mean()
                ),
            }
        )
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame, groups_run: set[int]) -> str:
    """The rule's reading, once both recipes have decided every group."""
    if set(table["recipe"]) != set(RECIPES) or groups_run != set(range(GROUPS)):
        return "Not every group has run yet: no verdict."
    score = table.set_index("recipe")["mean source accuracy"]
    gain = score["finetuned"] - score["head"]
    passed = gain > MARGIN
    return (
        f"Fine-tuning changes the mean source accuracy by {gain:+.4f} "
        f"({'more' if passed else 'not more'} than the rule's {MARGIN}): "
        + ("it earns a full run." if passed else "v11 stays and fine-tuning stops here.")
    )


def per_source_table(predictions: pd.DataFrame, groups: dict[str, int]) -> pd.DataFrame:
    """Each held-out source's accuracy under both recipes, with its group."""
    accuracy = {
        recipe: loso.per_source(predictions[predictions["recipe"] == recipe]).set_index(
            ["label", "source"]
        )["accuracy"]
        for recipe in RECIPES
    }
    table = pd.DataFrame(accuracy).round(4).reset_index()
    return table.assign(group=table["source"].map(groups)).sort_values(["label", "head"])


def write_report(predictions: pd.DataFrame, groups: dict[str, int]) -> None:
    """grouped.md from the predictions so far (a verdict once every group has run)."""
    table = summary_rows(predictions)
    recipes_per_group = predictions.groupby("group")["recipe"].nunique()
    groups_run = {int(g) for g in recipes_per_group[recipes_per_group == len(RECIPES)].index}
    text = (
        "# Classifier: fine-tuning against the head on grouped held-out sources\n\n"
        f"Written by `benchmarks/classifier_grouped_loso.py`. The 36 sources dealt into {GROUPS} "
        f"groups (groups run: {sorted(groups_run)}); each group held out in turn; one model per "
        "recipe and fold (seed 42). Harsher than LOSO (each fold trains on three quarters of "
        "the sources): compare the two recipes with each other only. Rule: "
        '`reports/classification_experiments.md` ("An eighth screen").\n\n'
        f"{markdown_table(table, index=False)}\n\n{verdict(table, groups_run)}\n\n"
        "## Per held-out source\n\n"
        f"{markdown_table(per_source_table(predictions, groups), index=False)}\n"
    )
    atomic_write_text(OUT / "grouped.md", text)
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", nargs="+", type=int, default=list(range(GROUPS)))
    args = parser.parse_args()
    split = make_split(load_manifest())
    split = split.assign(y=split["label"].map(LABELS.index))
    extra = build_feature_cache(extra_flickr8k_photos(split))
    cache = with_extra(build_feature_cache(split), extra)
    groups = source_groups(split)
    path = OUT / "grouped.csv"
    done = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["group"])
    for group in args.groups:
        if group in set(done["group"]):
            continue
        held = {source for source, g in groups.items() if g == group}
        print(f"group {group} held out: {sorted(held)}", flush=True)
        done = pd.concat([done, run_group(cache, held, group)], ignore_index=True)
        atomic_write_text(path, done.to_csv(index=False, float_format="%.5g"))
        write_report(done, groups)


if __name__ == "__main__":
    main()
