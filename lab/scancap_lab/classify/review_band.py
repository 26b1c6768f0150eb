"""The shipped classifier's review band, set on its own val split (never a LOSO fold): the
smallest margin outside which its val decisions are at least 99.5% right.

    python -m scancap_lab.classify.review_band            # print it
    python -m scancap_lab.classify.review_band --write    # and store it in calibration.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

import numpy as np
import pandas as pd

from scancap import paths
from scancap.backbones.inputs import to_model_input
from scancap.classify.data import LABELS, PHOTO
from scancap.classify.model import CALIBRATION_FILE, IMAGE_SIZE, Classifier, default_dir
from scancap.io import load_image
from scancap_lab.paths import REPORTS

STUDY = REPORTS / "classification_adapt"


def val_logits(classifier: Classifier, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's photo logits on its val split's images, and which are photos."""
    split = pd.read_csv(default_dir() / "split.csv")
    val = split[split["split"] == "val"]
    logits = []
    for start in range(0, len(val), batch):
        chunk = val["path"].iloc[start : start + batch]
        images = np.stack(
            [to_model_input(load_image(paths.data_dir() / p), IMAGE_SIZE) for p in chunk]
        )
        logits.append(classifier.logits_from_features(classifier.features(images))[0])
    return np.concatenate(logits), (val["label"].map(LABELS.index) == PHOTO).to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--write", action="store_true", help="store it in the shipped calibration.json"
    )
    args = parser.parse_args()
    classifier = Classifier.load()
    logits, is_photo = val_logits(classifier)
    calibration = classifier.calibration
    band = calibration.band_on(logits, is_photo)
    margins = calibration.margins(logits)
    inside, right = np.abs(margins) <= band, (margins >= 0) == is_photo
    summary = {
        "review_band": round(band, 4),
        "val images": int(len(logits)),
        "inside the band": round(float(inside.mean()), 4),
        "val errors": int((~right).sum()),
        "val errors inside": int((~right & inside).sum()),
        "accuracy outside": round(float(right[~inside].mean()), 4),
    }
    print(json.dumps(summary))
    STUDY.mkdir(parents=True, exist_ok=True)
    (STUDY / "band.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.write:
        target = default_dir() / CALIBRATION_FILE
        stored = asdict(replace(calibration, review_band=round(band, 4)))
        target.write_text(json.dumps(stored, indent=2) + "\n")
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
