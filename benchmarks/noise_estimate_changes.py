"""Where the shared-grain noise estimate changes σ̂ on the restoration benchmark's grid.

    .venv/bin/python benchmarks/noise_estimate_changes.py

`auto` and `auto-fast` read the image only through σ̂ and the edge blur, so wherever
`estimate_noise` gives the same σ̂ with and without its weak-texture part (`shared`), they return
the same array and every PSNR and SSIM of `reports/restoration.md` is unchanged. This computes
both estimates, fast and full, on every colour image and condition of
`benchmarks/restoration.py`'s grid (same seeds; the grey Set12 is measured as before by
construction). Where σ̂ changes, the image is restored both ways (σ̂ also sets the
deconvolution's regularisation) and the shift of each set's mean PSNR and SSIM is reported.
Writes `reports/noise_estimate_changes.md` (rule 1 of the shared-grain change,
`reports/restoration_experiments.md`).
"""

from __future__ import annotations

from functools import partial
from unittest import mock

import numpy as np
import pandas as pd
from grounding_backbones import markdown, write_markdown

from scancap import quality
from scancap.paths import REPO_ROOT, data_dir
from scancap.quality import estimate_noise
from scancap.restore import benchmark, restore_image

REPORT = REPO_ROOT / "reports" / "noise_estimate_changes.md"
COLOUR_SETS = [name for name, kind in benchmark.SETS.items() if kind == "color"]


def estimate_rows() -> pd.DataFrame:
    """One row per (set, image, condition, mode): σ̂ without and with the shared part, and
    where it changes, the shift of PSNR and SSIM after restoring with the new σ̂."""
    rows = []
    for set_name in COLOUR_SETS:
        for stem, clean in benchmark.load_set(data_dir(), set_name):
            for degradation in benchmark.GRID:
                degraded = degradation.apply(
                    clean, benchmark.image_seed(set_name, stem, degradation)
                )
                for mode in ("auto-fast", "auto"):
                    rows.append(compare(clean, degraded, mode) | {
                        "set": set_name, "image": stem, "condition": degradation.name,
                        "mode": mode,
                    })  # fmt: skip
    return pd.DataFrame(rows)


def compare(clean: np.ndarray, degraded: np.ndarray, mode: str) -> dict[str, float]:
    fast = mode == "auto-fast"
    before, after = estimate_noise(degraded, fast, shared=False), estimate_noise(degraded, fast)
    shifts = {"psnr_shift": 0.0, "ssim_shift": 0.0}
    if after != before:
        old, new = restored(degraded, mode, shared=False), restored(degraded, mode, shared=True)
        shifts = {
            "psnr_shift": quality.psnr(clean, new) - quality.psnr(clean, old),
            "ssim_shift": quality.ssim(clean, new) - quality.ssim(clean, old),
        }
    return {"before": before, "after": after} | shifts


def restored(image: np.ndarray, mode: str, shared: bool) -> np.ndarray:
    """`mode`'s output with the estimate as it was (shared=False) or as shipped."""
    with mock.patch.object(quality, "estimate_noise", partial(estimate_noise, shared=shared)):
        return restore_image(image, mode)[0]


def worst(rows: pd.DataFrame, column: str) -> float:
    """The largest shift of a (set, condition, mode) mean, in absolute value."""
    return float(rows.groupby(["set", "condition", "mode"])[column].mean().abs().max())


def main() -> None:
    rows = estimate_rows()
    rows = rows.assign(changed=rows["after"] != rows["before"], rise=rows["after"] - rows["before"])
    table = rows.groupby(["mode", "condition"], sort=False).agg(
        images=("changed", "size"),
        changed=("changed", "sum"),
        largest_rise=("rise", "max"),
        mean_psnr_shift=("psnr_shift", "mean"),
        mean_ssim_shift=("ssim_shift", "mean"),
    )
    table = table.round({"largest_rise": 3, "mean_psnr_shift": 4, "mean_ssim_shift": 5})
    columns = ["set", "image", "condition", "mode", "before", "after", "psnr_shift", "ssim_shift"]
    changed = rows.loc[rows["changed"], columns].round(
        {"before": 2, "after": 2, "psnr_shift": 4, "ssim_shift": 5}
    )
    intro = (
        f"{rows['image'].nunique()} colour images ({', '.join(COLOUR_SETS)}), the"
        f" {len(benchmark.GRID)} conditions of the restoration benchmark, its seeds. σ̂ before:"
        " `estimate_noise(..., shared=False)`; after: the shipped estimate. **"
        f"{int(rows['changed'].sum())} of {len(rows)} estimates change.** Mean shifts are over"
        " all the images of a set and condition (as the benchmark's means), per set the"
        f" largest: PSNR {worst(rows, 'psnr_shift'):.4f} dB, SSIM {worst(rows, 'ssim_shift'):.5f}."
    )
    sections = [(None, markdown(table.reset_index()))]
    if len(changed):
        sections.append(("Estimates that change", markdown(changed)))
    write_markdown(REPORT, "The shared-grain estimate on the restoration grid", intro, sections)


if __name__ == "__main__":
    main()
