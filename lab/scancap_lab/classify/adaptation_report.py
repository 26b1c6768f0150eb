"""The adaptation study's tables and curve, from its CSVs (`benchmarks/classifier_adapt.py`):
`reports/classification_adapt.md` whole, and its summary section in the classification report."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scancap_lab.classify.adaptation_study import KS, bootstrap_mean
from scancap_lab.markdown import markdown
from scancap_lab.paths import REPORTS

STUDY = REPORTS / "classification_adapt"
FIGURE = REPORTS / "figures" / "classification_adapt.png"
MEASURES = ("accuracy", "photo recall", "paintings kept out", "old-photo recall")


def cell(values: pd.Series) -> str:
    mean, low, high = bootstrap_mean(values.to_numpy())
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]" if np.isfinite(mean) else "–"


def mixed_table(mixed: pd.DataFrame) -> pd.DataFrame:
    """Per queue, adaptation and k: each measure's mean over archives with its interval."""
    rows = []
    for (queue, adaptation, k), group in mixed.groupby(["queue", "adaptation", "k"], sort=False):
        rows.append({"queue": queue, "adaptation": adaptation, "k": k}
                    | {m: cell(group[m]) for m in MEASURES})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["queue", "adaptation", "k"], kind="stable")


def single_table(single: pd.DataFrame, chosen: str) -> pd.DataFrame:
    """Accuracy per source alone: the base, then the chosen queue and adaptation at each k."""
    ours = single[(single["queue"] == "margin") & (single["adaptation"] == chosen)]
    base = single[(single["queue"] == "margin") & (single["k"] == 0)]
    table = ours.pivot_table(index=["half", "source"], columns="k", values="accuracy")
    table.insert(0, 0, base.set_index(["half", "source"])["accuracy"])
    table.columns = [f"k={k}" for k in table.columns]
    return table.round(3).reset_index().fillna("–")


def coverage_table(coverage: pd.DataFrame) -> pd.DataFrame:
    table = coverage.groupby(["queue", "share"])["accuracy"].apply(cell).unstack("share")
    table.columns = [f"top {share:.0%} reviewed" for share in table.columns]
    return table.reset_index()


def unsupervised_table(unsupervised: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The EM prior's mean over each half's mixed archives, and its worst single sources."""
    mixed = unsupervised[unsupervised["archive"].notna()]
    means = mixed.groupby(["half", "method"])["accuracy"].apply(cell).unstack("method")
    single = unsupervised[unsupervised["source"].notna()]
    per = single.pivot_table(index=["half", "source"], columns="method", values="accuracy")
    per["change"] = per["EM prior"] - per["base"]
    return means.reset_index(), per.sort_values("change").head(5).round(3).reset_index()


def curve(mixed: pd.DataFrame, chosen: str, path: Path = FIGURE) -> Path:
    """Accuracy of the decisions nobody reviewed against the corrections made, report half."""
    figure, axis = plt.subplots(figsize=(6.4, 4))
    for (queue, adaptation), group in mixed.groupby(["queue", "adaptation"]):
        stats = [bootstrap_mean(group[group["k"] == k]["accuracy"].to_numpy()) for k in KS]
        mean, low, high = (np.array(values) for values in zip(*stats, strict=True))
        label = f"{queue} queue, " + ("propagation" if adaptation == chosen else "no adaptation")
        axis.plot(KS, mean, marker="o", label=label)
        axis.fill_between(KS, low, high, alpha=0.15)
    axis.axhline(0.985, color="grey", linestyle="--", linewidth=0.8)
    axis.set_xlabel("items a person corrected, per archive of up to 500")
    axis.set_ylabel("accuracy of the other items")
    axis.set_title("Archives of 3 held-out sources (report half, 100 archives)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(STUDY / f"{name}.csv")


def section(figure: str = "figures/classification_adapt.png") -> str:
    """The classification report's summary of the study (empty before the study has run)."""
    if not (STUDY / "report_mixed.csv").exists():
        return ""
    choice = json.loads((STUDY / "choice.json").read_text())
    mixed = read("report_mixed")
    ours = mixed[(mixed["queue"] == "margin") & (mixed["adaptation"] == choice["adaptation"])]
    base = mixed[(mixed["queue"] == "margin") & (mixed["k"] == 0)]
    at = {k: cell(ours[ours["k"] == k]["accuracy"]) for k in (20, 40)}
    coverage = read("risk_coverage")
    five = coverage[(coverage["queue"] == "margin") & (coverage["share"] == 0.05)]
    return f"""## Adaptation to an archive: review and corrections (leave-one-source-out)

`scancap review` lists the items of a run most worth a person's look, `scancap adapt` learns
the labels they give (README, "Learning an archive"). Measured as it is used, on sources the
classifier never saw: archives of 3 held-out sources, up to 500 items each, a simulated reviewer
correcting the first k items of the queue, scores on the items nobody reviewed (rule and both
rounds: `classification_experiments.md`; every table: `classification_adapt.md`). Chosen on
the select half's sources: the least certain decisions first (`margin` queue) and each
correction's residual spread to its look-alikes by kernel regression on the frozen pooled
features ({choice["adaptation"]}). On the report half's 100 archives:

- no correction: {cell(base["accuracy"])}; after 20 corrections: {at[20]}; after 40: {at[40]}
  (targets 0.985 and 0.99: **missed**);
- the queue alone (no adaptation), top 5% reviewed: the rest are {cell(five["accuracy"])} right
  (target 0.97: **missed**); k random items instead of the queue help less (tables).

![accuracy against corrections]({figure})
"""


def optional(name: str) -> dict | None:
    path = STUDY / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def write() -> Path:
    """`reports/classification_adapt.md` from the study's CSVs (and its speed and review band
    records, once measured), with its figure."""
    speed, band = optional("speed"), optional("band")
    choice = json.loads((STUDY / "choice.json").read_text())
    mixed, single = read("report_mixed"), read("report_single")
    curve(mixed, choice["adaptation"])
    em_means, em_worst = unsupervised_table(read("unsupervised"))
    select = read("select")
    selection = (
        select.groupby(["queue", "adaptation", "k"])["accuracy"].mean().unstack("k").round(4)
    )
    top = selection.drop(columns=0).sort_values(20, ascending=False).head(10).reset_index()
    lines = [
        "# Adaptation from corrections: the study",
        "",
        "Written by `python benchmarks/classifier_adapt.py report` (after `select`), from the "
        'CSVs beside this file; the rule is in `classification_experiments.md` ("Adaptation '
        "from a person's corrections\"). Intervals: 95% percentile bootstrap over archives "
        "(1,000 resamples, seed 0).",
        "",
        section("figures/classification_adapt.png"),
        "## Selection (select half, mean accuracy of the items not reviewed, 100 archives)",
        "",
        f"Chosen: `{choice['queue']}` queue, `{choice['adaptation']}` (k = 20: "
        f"{choice['at_20']:.4f}, k = 40: {choice['at_40']:.4f}). The ten best at k = 20:",
        "",
        *markdown(top.astype(str)),
        "",
        "The second round (h up to 1.0, T up to 32, λ up to 10, `margin` queue; "
        "`select_round2.csv`) chose the same settings again.",
        "",
        "## Report half, mixed archives (100 archives of 3 held-out sources)",
        "",
        *markdown(mixed_table(mixed).astype(str)),
        "",
        "## Each source alone (up to 500 items; accuracy of the items not reviewed)",
        "",
        *markdown(single_table(single, choice["adaptation"]).astype(str)),
        "",
        "## The review queue alone: accuracy of the decisions not sent to review",
        "",
        *markdown(coverage_table(read("risk_coverage")).astype(str)),
        "",
        "## Unsupervised: the photo prior re-estimated on each archive (EM), k = 0",
        "",
        *markdown(em_means.astype(str)),
        "",
        "Its five worst single sources (a loss above 0.005 on any source stops it: not shipped):",
        "",
        *markdown(em_worst.astype(str)),
        "",
    ]
    if band:
        lines += [
            "## The review band (`needs_review` in the manifest)",
            "",
            "Set on the shipped classifier's own val split by "
            "`python -m scancap_lab.classify.review_band --write`: "
            + ", ".join(f"{k} {v}" for k, v in band.items())
            + ".",
            "",
        ]
    if speed:
        lines += [
            "## Speed",
            "",
            "`scancap adapt` on "
            + f"{speed['corrections']} corrections, reading the images, in a new process: "
            + f"{speed['seconds']:.1f} s wall on this machine (target: under 30 s).",
            "",
        ]
    target = REPORTS / "classification_adapt.md"
    target.write_text("\n".join(lines))
    return target
