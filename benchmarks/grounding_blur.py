"""Do the shipped grounding detectors still see people and animals in degraded photos?

    .venv/bin/python benchmarks/grounding_blur.py

A diagnostic, not a selection step: the pipeline's degradation study (`reports/pipeline.md`)
found that blur costs grounded captions more CIDEr-D than it cost free ones. Here the shipped
person and animal detectors read the 1,000 Flickr8k dev photos clean and under each condition of
that study (the same seeded degradations, `scancap_lab.pipeline.bench.CONDITIONS`), both backbones
on the degraded photo, held to the grainy thresholds where its grain σ̂ reaches the grain level
(`reports/grounding_grain.md`), and their recall is counted on the photos that at least 3 of 5
captions call a person (or an animal). The second table captions the `report` half of the
hand-labelled set (which chose nothing) with grounding, clean, under each condition (seeded the
same way) and after the pipeline's default restoration of each degraded photo (`auto-fast`), as
`scancap run` captions: the decoder's MobileNetV2 reads the restored photo, the Lite0 regions
and the grain σ̂ are those of the photo as it came in. It counts the captions that invent a
person or an animal (CHAIR-style, 95% bootstrap intervals). Writes `reports/grounding_blur.md`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scancap.caption.data import FLICKR, load_captions, load_split
from scancap.caption.metrics import hallucination_rates
from scancap.caption.model import Captioner
from scancap.caption.train_grounding import CHUNK, caption_labels, load_labelled
from scancap.config import RunConfig
from scancap.io import load_image
from scancap.paths import data_dir
from scancap.quality import degrade
from scancap.restore.auto import restore_image
from scancap_lab.markdown import markdown, write_markdown
from scancap_lab.paths import CAPTION_LABELS, REPO_ROOT
from scancap_lab.pipeline.bench import CONDITIONS, SEED

REPORT = REPO_ROOT / "reports" / "grounding_blur.md"
RESTORE_MODE = RunConfig().restore_mode  # what `scancap run` does before it captions


def detected(captioner: Captioner, images: list[np.ndarray]) -> pd.DataFrame:
    """Per image, whether the shipped detectors fire (both backbones read the same pixels)."""
    rows = []
    for i in range(0, len(images), CHUNK):
        chunk = images[i : i + CHUNK]
        lite0 = captioner.lite0_grids(chunk) if captioner.needs_lite0 else None
        grain = captioner.grain_of(chunk) if captioner.needs_grain else None
        best = captioner.detect(chunk)[1] if captioner.needs_objects else None
        evidence = captioner.grounding.evidence(captioner.grids(chunk), lite0, grain, best)
        rows += [{"person": e.person, "animal": e.animal} for e in evidence]
    return pd.DataFrame(rows)


def degraded_versions(clean: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """The images clean and under each condition of the pipeline study."""
    return {"clean": clean} | {
        c.name: [degrade(image, c.noise, c.blur, seed=SEED) for image in clean] for c in CONDITIONS
    }


def pipeline_captions(
    captioner: Captioner, inputs: list[np.ndarray], seen: list[np.ndarray]
) -> list[str]:
    """Grounded captions of `seen` (the photos as restored, or as they are) read with the Lite0
    grids and the grain of `inputs` (the photos as they came in), as `scancap run` captions."""
    lite0 = captioner.lite0_grids(inputs) if captioner.needs_lite0 else None
    grain = captioner.grain_of(inputs) if captioner.needs_grain else None
    found, best = captioner.detect(seen) if captioner.needs_objects else (None, None)
    grids = captioner.grids(seen)
    captions = captioner.describe(grids, lite0=lite0, grain=grain, objects=best, detections=found)
    return [c.text for c in captions]


def hallucination_rows(captioner: Captioner, data: Path) -> pd.DataFrame:
    """Grounded captions of the report half, per condition, as they are and after restoration:
    the share that invents a person, an animal, or either (on the photos without them), with
    its interval."""
    labelled = load_labelled("report", CAPTION_LABELS)
    clean = [load_image(data / path) for path in labelled["path"]]
    versions = degraded_versions(clean)
    cases = [(name, images, images) for name, images in versions.items()] + [
        (
            f"{name}, restored ({RESTORE_MODE})",
            images,
            [restore_image(i, RESTORE_MODE)[0] for i in images],
        )
        for name, images in versions.items()
        if name != "clean"
    ]
    rows = []
    for condition, inputs, seen in cases:
        texts = pipeline_captions(captioner, inputs, seen)
        rates = hallucination_rates(texts, labelled["person"], labelled["animal"])
        row = {"condition": condition}
        for rate in rates.itertuples():
            row[f"{rate.measure} ({rate.photos})"] = (
                f"{rate.share:.3f} [{rate.low:.3f}, {rate.high:.3f}]"
            )
        print(row, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    data, captioner = data_dir(), Captioner.load()
    names = load_split("dev", data)
    labels = caption_labels(load_captions(data), names)
    clean = [load_image(data / FLICKR / "images" / name) for name in names]
    versions = degraded_versions(clean)
    rows = []
    for condition, images in versions.items():
        fired = detected(captioner, images)
        row = {"condition": condition}
        for concept in ("person", "animal"):
            shown = (labels[concept] == 1).to_numpy()
            row[f"{concept} recall ({shown.sum()} photos)"] = round(
                float(fired[concept][shown].mean()), 3
            )
        print(row, flush=True)
        rows.append(row)
    invented = [
        "Grounded captions of the report half (175 hand-labelled photos) that invent a subject:",
        "",
        *markdown(hallucination_rows(captioner, data)),
    ]
    write_markdown(
        REPORT,
        "The grounding detectors on degraded photos (Flickr8k dev)",
        __doc__.split("\n\n", 2)[2].strip(),
        [(None, markdown(pd.DataFrame(rows))), (None, invented)],
    )


if __name__ == "__main__":
    main()
