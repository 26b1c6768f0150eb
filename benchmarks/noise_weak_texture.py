"""A candidate noise estimate that sees grain the colour channels share (selection data only).

    .venv/bin/python benchmarks/noise_weak_texture.py

`reports/noise_shared.md` showed that `estimate_noise` missed noise the three channels share,
which is what a JPEG keeps of a scan's noise. The candidate (shipped since 2026-11-30 as
`estimate_noise`; the estimate before is `shared=False`): the larger of that and
a weak-texture estimate of the luma (Liu, Tanaka and Okutomi 2013, "Single-image noise level
estimation for blind denoising"): among 7 x 7 patches, keep those whose gradient energy a noise
of the current σ would explain (a gamma quantile), take σ² as the smallest eigenvalue of their
covariance, and repeat. Flat patches carry the noise without the texture, so clean photos
should stay low. Measured on the same photos and conditions as `noise_shared.py`, and on the
first Flickr8k train photos as they are (the captioner's grain level is the largest σ̂ there).
Chooses nothing; writes `reports/noise_weak_texture.md`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from grounding_backbones import markdown, write_markdown
from noise_shared import CONDITIONS, colour_photos

from scancap.caption.data import FLICKR, load_split
from scancap.io import load_image
from scancap.paths import REPO_ROOT, data_dir
from scancap.quality import estimate_noise

REPORT = REPO_ROOT / "reports" / "noise_weak_texture.md"
FLICKR_PHOTOS = 300


def summary(name: str, images: list[np.ndarray]) -> dict[str, str]:
    """σ̂ per channel only (`shared=False`) and as shipped (the candidate), spread over images."""

    def spread(shared: bool) -> str:
        values = np.array([estimate_noise(image, shared=shared) for image in images])
        low, mid, high = np.percentile(values, [10, 50, 90])
        return f"{mid:.2f} [{low:.2f}, {high:.2f}], max {values.max():.2f}"

    return {"photos": name, "estimate_noise": spread(False), "candidate": spread(True)}


def main() -> None:
    photos = colour_photos()
    rows = [
        summary(condition, [make(photo, seed) for seed, photo in enumerate(photos)])
        for condition, make in CONDITIONS.items()
    ]
    names = load_split("train", data_dir())[:FLICKR_PHOTOS]
    flickr = [load_image(data_dir() / FLICKR / "images" / name) for name in names]
    rows.append(summary(f"first {FLICKR_PHOTOS} Flickr8k train photos, as they are", flickr))
    intro = (
        f"σ̂ (0-255): median [10th, 90th percentile], max. {len(photos)} colour photos (Kodak24,"
        " CBSD68) under `noise_shared.py`'s conditions, and Flickr8k train photos as they are."
        " Candidate: `estimate_noise` as shipped since 2026-11-30 (`noise_sigma_weak_texture`'s"
        " defaults: 7 x 7 patches, 10,000 per image, gamma quantile 0.99); `estimate_noise`:"
        " the same with `shared=False`."
    )
    write_markdown(REPORT, "A noise estimate that sees shared grain (candidate)", intro,
                   [(None, markdown(pd.DataFrame(rows)))])  # fmt: skip


if __name__ == "__main__":
    main()
