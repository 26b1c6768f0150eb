"""The grainy thresholds on the select half: the eighteenth change's selection check.

    .venv/bin/python benchmarks/grounding_grain.py

The shipped grounding holds a photo whose grain σ̂ reaches its grain level to grainy person and
animal thresholds (`scancap train grounding` sets both on Flickr8k train and the select half).
This reads the select half of the hand-labelled set (the data that chose them), as the photos
are and as one degraded copy each (`degraded_copy`: blur σ_b in [0, 2], noise σ in [0, 30],
seeded per file), and compares the shipped detectors with their clean thresholds only and with
the grainy thresholds: false positives, recall, and the union rate on photos with neither
(rule 1 of the eighteenth change, `reports/captioning_experiments.md`). A second table counts,
per source of both halves, the photos as they are that reach the grain level: only their σ̂ is
read, not the report half's labels. A third counts Kodak24's film scans enlarged 3x with grain
added: grainy at full size, they reach the level only if the grain survives the pixel averaging
of the backbones' resize (the nineteenth change measures σ̂ after it). Writes
`reports/grounding_grain.md`. Dev and COCO-mini are not read.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from grounding_backbones import markdown, write_markdown

from scancap.caption.grounding import Grounding
from scancap.caption.model import Captioner
from scancap.caption.train_grounding import degraded_copy, grain_photos, load_labelled
from scancap.io import load_image
from scancap.paths import REPO_ROOT, data_dir
from scancap.quality import degrade, estimate_noise

SCAN_GRAIN = 6.0  # σ (0-255) of the grain added to the enlarged scans, per channel

REPORT = REPO_ROOT / "reports" / "grounding_grain.md"


def rates(present: pd.DataFrame, labels: pd.DataFrame) -> dict[str, str]:
    """False-positive rate and recall of each subject detector, and the union on neither."""
    row = {}
    for concept in ("person", "animal"):
        truth = labels[concept].to_numpy() == 1
        fired = present[concept].to_numpy()
        row[f"{concept} FP ({(~truth).sum()})"] = f"{fired[~truth].mean():.3f}"
        row[f"{concept} recall ({truth.sum()})"] = f"{fired[truth].mean():.3f}"
    neither = ((labels["person"] == 0) & (labels["animal"] == 0)).to_numpy()
    union = (present["person"] | present["animal"]).to_numpy()[neither]
    row[f"union on neither ({neither.sum()})"] = f"{union.mean():.3f} ({union.sum()})"
    return row


def main() -> None:
    captioner = Captioner.load()
    shipped = captioner.grounding
    clean_only = Grounding(shipped.kernel, shipped.bias, shipped.detectors)  # no grain level
    select = load_labelled("select")
    photos = [load_image(data_dir() / path) for path in select["path"]]
    versions = {
        "as they are": photos,
        "degraded copies": [
            degraded_copy(image, Path(path).name)
            for image, path in zip(photos, select["path"], strict=True)
        ],
    }
    rows = []
    for version, images in versions.items():
        grids, lite0 = captioner.grids(images), captioner.lite0_grids(images)
        grain = np.asarray(captioner.grain_of(images))
        for name, grounding in (("clean thresholds only", clean_only), ("with grainy", shipped)):
            evidence = grounding.evidence(grids, lite0, grain if grounding.reads_grain else None)
            present = pd.DataFrame([e.present for e in evidence])
            grainy = f"{(grain >= shipped.grain_level).sum()} of {len(grain)}"
            rows.append({"photos": version, "thresholds": name, "grainy photos": grainy}
                        | rates(present, select))  # fmt: skip
    thresholds = ", ".join(
        f"p({n}) >= {d.grainy_threshold:.3f} (clean {d.threshold:.3f})"
        for n, d in shipped.detectors.items()
        if d.grainy_threshold is not None
    )
    intro = (
        f"Select half of `benchmarks/labels/caption_ood.csv` ({len(select)} photos), as they are"
        " and as one seeded degraded copy each. Grain level (the largest σ̂ of the first 1,000"
        f" Flickr8k train photos): {shipped.grain_level:.2f}; grainy thresholds: {thresholds}."
        " This half chose those thresholds, so its rates are the selection's, not a test."
    )
    sections = [
        (None, markdown(pd.DataFrame(rows))),
        grainy_sources(captioner, shipped),
        grainy_large_scans(captioner, shipped),
    ]
    write_markdown(REPORT, "Grainy thresholds on the select half", intro, sections)


def grainy_sources(captioner: Captioner, grounding: Grounding) -> tuple[str, list[str]]:
    """How often real photos, as they are, reach the grain level: per source of both halves
    of the hand-labelled set (only their σ̂ is read, not their labels)."""
    labelled = pd.concat([load_labelled("select"), load_labelled("report")], ignore_index=True)
    grain = grain_photos(captioner, [data_dir() / path for path in labelled["path"]])
    frame = labelled.assign(grainy=grain >= grounding.grain_level, grain=grain)
    table = frame.groupby("source").agg(
        photos=("grainy", "size"), grainy=("grainy", "sum"), median_grain=("grain", "median")
    )
    table = table.reset_index().round({"median_grain": 2})
    intro = (
        f"Photos as they are that reach the grain level, per source of both halves"
        f" ({len(frame)} photos, {int(frame['grainy'].sum())} grainy; σ̂ only, labels unread):"
    )
    return "Real photos held to the grainy thresholds", [intro, "", *markdown(table)]


def grainy_large_scans(captioner: Captioner, grounding: Grounding) -> tuple[str, list[str]]:
    """How many large scans with fine grain reach the grain level, σ̂ measured at full size
    (as the eighteenth change did) and after the backbones' pixel averaging (as shipped now)."""
    photos = map(load_image, sorted((data_dir() / "restoration" / "Kodak24").glob("*.png")))
    scans = [
        degrade(cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC), SCAN_GRAIN,
                0.0, seed=seed)
        for seed, photo in enumerate(photos)
    ]  # fmt: skip
    measures = {
        "full size": np.array([estimate_noise(scan, fast=True) for scan in scans]),
        "after the backbones' averaging": np.asarray(captioner.grain_of(scans)),
    }
    table = pd.DataFrame(
        [{"σ̂ measured on": where, "median σ̂": f"{np.median(grain):.2f}",
          "grainy": f"{(grain >= grounding.grain_level).sum()} of {len(grain)}"}
         for where, grain in measures.items()]
    )  # fmt: skip
    megapixels = scans[0].shape[0] * scans[0].shape[1] / 1e6
    intro = (
        f"Kodak24's {len(scans)} film scans enlarged 3x (bicubic, {megapixels:.1f} megapixels)"
        f" with σ = {SCAN_GRAIN:g} grain added per channel (seeded); level"
        f" {grounding.grain_level:.2f}. Grain shared by the three channels would not count at"
        " any size: `estimate_noise` reads the smallest eigenvalues of colour patches, which it"
        " leaves to the chroma."
    )
    return "Large scans with fine grain", [intro, "", *markdown(table)]


if __name__ == "__main__":
    main()
