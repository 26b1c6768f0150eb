"""Where the shared-grain noise estimate changes σ̂ on the restoration benchmark's grid.

    .venv/bin/python benchmarks/noise_estimate_changes.py

`auto` and `auto-fast` read the image only through σ̂ and the edge blur, so wherever
`estimate_noise` gives the same σ̂ with and without its weak-texture part (`shared`), they return
the same array and every PSNR and SSIM of `reports/restoration.md` is unchanged. This computes
both estimates, fast and full, on every colour image and condition of
`benchmarks/restoration.py`'s grid (same seeds; the grey Set12 is measured as before by
construction) and writes `reports/noise_estimate_changes.md` (rule 1 of the shared-grain change,
`reports/restoration_experiments.md`).
"""

from __future__ import annotations

import pandas as pd
from grounding_backbones import markdown, write_markdown

from scancap.paths import REPO_ROOT, data_dir
from scancap.quality import estimate_noise
from scancap.restore import benchmark

REPORT = REPO_ROOT / "reports" / "noise_estimate_changes.md"
COLOUR_SETS = [name for name, kind in benchmark.SETS.items() if kind == "color"]


def estimate_rows() -> pd.DataFrame:
    """One row per (set, image, condition, path): σ̂ without and with the shared part."""
    rows = []
    for set_name in COLOUR_SETS:
        for stem, clean in benchmark.load_set(data_dir(), set_name):
            for degradation in benchmark.GRID:
                seed = benchmark.image_seed(set_name, stem, degradation)
                degraded = degradation.apply(clean, seed)
                for fast in (True, False):
                    rows.append({
                        "set": set_name, "image": stem, "condition": degradation.name,
                        "path": "auto-fast" if fast else "auto",
                        "before": estimate_noise(degraded, fast, shared=False),
                        "after": estimate_noise(degraded, fast),
                    })  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    rows = estimate_rows()
    rows = rows.assign(changed=rows["after"] != rows["before"], rise=rows["after"] - rows["before"])
    table = rows.groupby(["path", "condition"], sort=False).agg(
        images=("changed", "size"), changed=("changed", "sum"), largest_rise=("rise", "max")
    )
    table["largest_rise"] = table["largest_rise"].round(3)
    changed = rows[rows["changed"]].assign(
        before=lambda f: f["before"].round(2), after=lambda f: f["after"].round(2)
    )
    intro = (
        f"{rows['image'].nunique()} colour images ({', '.join(COLOUR_SETS)}), the"
        f" {len(benchmark.GRID)} conditions of the restoration benchmark, its seeds. σ̂ before:"
        " `estimate_noise(..., shared=False)`; after: the shipped estimate. **"
        f"{int(rows['changed'].sum())} of {len(rows)} estimates change.**"
    )
    sections = [(None, markdown(table.reset_index()))]
    if len(changed):
        sections.append(
            ("Estimates that change", markdown(changed.drop(columns=["changed", "rise"])))
        )
    write_markdown(REPORT, "The shared-grain estimate on the restoration grid", intro, sections)


if __name__ == "__main__":
    main()
