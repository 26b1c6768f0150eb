"""The adaptation study (rule: reports/classification_experiments.md, "Adaptation from a
person's corrections"): choose a review queue and an adaptation on the select half's archives,
then measure the choice once on the report half. Writes reports/classification_adapt.md and its
CSVs under reports/classification_adapt/.

    python benchmarks/classifier_adapt.py select [--round 2]  # every candidate on the select half
    python benchmarks/classifier_adapt.py report [--round 2]  # the choice on the report half
    python benchmarks/classifier_adapt.py speed   # scancap adapt on 40 corrections, timed
    python benchmarks/classifier_adapt.py write   # the Markdown report from the CSVs
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from scancap import paths
from scancap_lab.classify.adaptation_report import write
from scancap_lab.classify.adaptation_study import (
    QUEUES,
    adaptations,
    base_table,
    bootstrap_mean,
    choose,
    halves,
    mixed_archives,
    risk_coverage,
    run_archive,
    scores,
    single_archives,
)
from scancap_lab.classify.archive_features import clean_features
from scancap_lab.paths import REPORTS

OUT = REPORTS / "classification_adapt"
MEASURES = ("accuracy", "photo recall", "paintings kept out", "old-photo recall")


def load() -> tuple[pd.DataFrame, np.ndarray, dict[str, list[str]]]:
    manifest, _, pooled = clean_features()
    table, features = base_table(manifest, pooled)
    return table, features, halves(table)


def suffix(round_: int) -> str:
    return "" if round_ == 1 else f"_round{round_}"


def select(round_: int) -> None:
    table, features, parts = load()
    queues = QUEUES if round_ == 1 else {"margin": QUEUES["margin"]}  # round 2: the queue chosen
    records = []
    for seed, rows in enumerate(mixed_archives(table, parts["select"])):
        records += run_archive(table, features, rows, seed, queues, adaptations(round_))
    results = pd.DataFrame(records)
    OUT.mkdir(parents=True, exist_ok=True)
    results.to_csv(OUT / f"select{suffix(round_)}.csv", index=False)
    choice = choose(results)
    (OUT / f"choice{suffix(round_)}.json").write_text(json.dumps(choice.__dict__, indent=2) + "\n")
    means = results.groupby(["queue", "adaptation", "k"])["accuracy"].mean().unstack("k")
    print(means.sort_values(20, ascending=False).head(15).round(4).to_string())
    print(choice)


def em_prior(
    margins: np.ndarray, thresholds: np.ndarray, prior: float, rounds: int = 50
) -> np.ndarray:
    """Margins shifted by the log ratio of the archive's photo prior, estimated by EM on the
    calibrated probabilities (Saerens et al. 2002), to the training prior `prior`."""
    calibrated = margins + thresholds
    estimate = prior
    for _ in range(rounds):
        shifted = expit(calibrated + logit(estimate) - logit(prior))
        estimate = float(np.clip(shifted.mean(), 1e-3, 1 - 1e-3))
    return margins + logit(estimate) - logit(prior)


def prior_rows(
    table: pd.DataFrame, rows: np.ndarray, prior: float, key: dict[str, object]
) -> list[dict[str, object]]:
    """One archive's scores as it was and with the EM prior, each row tagged with `key`."""
    margins, thresholds = (table[c].to_numpy()[rows] for c in ("margin", "threshold_logit"))
    em = em_prior(margins, thresholds, prior)
    return [
        key | {"method": name} | scores(table, rows, adapted > 0)
        for name, adapted in (("base", margins), ("EM prior", em))
    ]


def summary_rows(results: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = []
    for key, group in results.groupby(keys):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        for measure in MEASURES:
            mean, low, high = bootstrap_mean(group[measure].to_numpy())
            row[measure] = f"{mean:.3f} [{low:.3f}, {high:.3f}]" if np.isfinite(mean) else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def report(round_: int) -> None:
    table, features, parts = load()
    choice = json.loads((OUT / f"choice{suffix(round_)}.json").read_text())
    chosen = adaptations(round_)[choice["adaptation"]]
    queues = {name: QUEUES[name] for name in dict.fromkeys([choice["queue"], "margin", "random"])}
    adapts = {"none": adaptations()["none"], choice["adaptation"]: chosen}
    name = suffix(round_)
    mixed, coverage = [], []
    for seed, rows in enumerate(mixed_archives(table, parts["report"])):
        mixed += run_archive(table, features, rows, seed, queues, adapts)
        coverage += risk_coverage(table, features, rows, seed, list(queues))
    single = []
    for half, sources in parts.items():
        for source, rows in single_archives(table, sources):
            for record in run_archive(table, features, rows, 0, queues, adapts):
                single.append(record | {"source": source, "half": half})
    # The unsupervised try at k = 0: the photo prior re-estimated on each archive.
    prior = float(table["is_photo"].mean())
    unsupervised = []
    for half in ("select", "report"):
        archives = [({"archive": seed}, rows)
                    for seed, rows in enumerate(mixed_archives(table, parts[half]))]  # fmt: skip
        archives += [({"source": source}, rows)
                     for source, rows in single_archives(table, parts[half])]  # fmt: skip
        for key, rows in archives:
            unsupervised += prior_rows(table, rows, prior, {"half": half} | key)
    OUT.mkdir(parents=True, exist_ok=True)
    for part, frame in (("report_mixed", mixed), ("report_single", single),
                        ("risk_coverage", coverage), ("unsupervised", unsupervised)):  # fmt: skip
        pd.DataFrame(frame).to_csv(OUT / f"{part}{name}.csv", index=False)
    print(summary_rows(pd.DataFrame(mixed), ["queue", "adaptation", "k"]).to_string())


def speed(corrections: int = 40) -> None:
    """`scancap adapt` in a new process on 40 items of report-half sources, labelled."""
    table, _, parts = load()
    pool = table[table["source"].isin(parts["report"])]
    chosen = pool.sample(corrections, random_state=0)
    with tempfile.TemporaryDirectory(prefix="scancap-adapt-") as folder:
        csv = Path(folder) / "corrections.csv"
        files = [str((paths.data_dir() / path).resolve()) for path in chosen["path"]]
        pd.DataFrame({"path": files, "label": chosen["label"]}).to_csv(csv, index=False)
        command = [sys.executable, "-m", "scancap.cli", "adapt", str(csv), "--out",
                   str(Path(folder) / "adapted"), "--quiet"]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True)
        seconds = time.perf_counter() - start
    record = {"corrections": corrections, "seconds": round(seconds, 2), "date": str(date.today())}
    (OUT / "speed.json").write_text(json.dumps(record, indent=2) + "\n")
    print(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=["select", "report", "speed", "write"])
    parser.add_argument("--round", type=int, default=1, choices=[1, 2], help="the rule's round")
    args = parser.parse_args()
    if args.stage == "select":
        return select(args.round)
    if args.stage == "report":
        report(args.round)
    elif args.stage == "speed":
        speed()
    print(write())


if __name__ == "__main__":
    main()
