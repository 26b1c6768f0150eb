"""How the HTML report scales: writes reports/report.md from what it measures.

    .venv/bin/python benchmarks/report_scale.py [--rows 1000,10000,100000] [--opens 5]

For each size, synthetic manifest rows (seeded: names, captions, tags, measures of the kind a
run writes; errors, photos and non-photos mixed) go through `write_report`, and headless
Chromium (scancap_lab/browser.py) opens the page from `file://` several times: the open time is from
navigation start to the first page of cards drawn, as the page itself records it. Then a search,
a class filter, a sort and a page turn are timed the same way on the largest report. Thumbnails
are real WebP files, a few shared between the rows: their number does not change the page's
work, only the disk space, which is reported per image from a real run instead.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from skimage import data

from scancap import __version__
from scancap.pipeline.report import REPORT_FILE, write_report, write_thumbnails
from scancap_lab.browser import MISSING, chromium_available, headless_chromium
from scancap_lab.paths import reports_dir

OPEN_TARGET_SECONDS = 2.0
WORDS = [
    "a",
    "man",
    "woman",
    "dog",
    "child",
    "boy",
    "girl",
    "two",
    "people",
    "red",
    "blue",
    "green",
    "white",
    "black",
    "field",
    "beach",
    "street",
    "building",
    "river",
    "mountain",
    "snow",
    "grass",
    "water",
    "bridge",
    "church",
    "tower",
    "boat",
    "car",
    "bicycle",
    "flowers",
    "tree",
    "forest",
    "city",
    "night",
    "old",
    "photograph",
    "portrait",
    "standing",
    "running",
    "sitting",
    "playing",
    "walking",
    "in",
    "on",
    "at",
    "with",
    "near",
    "of",
    "the",
]
TAGS = ("person", "dog", "lakeside", "alp", "cliff", "seashore", "church", "castle", "bridge",
        "daisy", "beacon", "valley", "palace", "sports car", "bicycle")  # fmt: skip
SUBTYPES = ("painting", "schematic", "sketch", "text")


def synthetic_rows(count: int, seed: int = 0) -> list[dict]:
    """Manifest rows as a large run writes them: about 60% photos, 2% errors."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        folder = f"box_{i // 5000:03d}/folder_{i // 250:04d}"
        row = {"path": f"{folder}/scan_{i:06d}.jpg", "status": "ok", "error": "",
               "width": int(rng.integers(800, 4000)), "height": int(rng.integers(800, 4000)),
               "p_photo": round(float(rng.random()), 6), "seconds_decode": 0.02,
               "seconds_classify": 0.04}  # fmt: skip
        draw = rng.random()
        if draw < 0.02:
            row |= {"status": "error", "error": "truncated or corrupt JPEG file", "p_photo": None}
        elif draw < 0.62:
            caption = " ".join(rng.choice(WORDS, int(rng.integers(6, 12))))
            tags = "; ".join(f"{t}:{rng.random():.2f}" for t in rng.choice(TAGS, 3, replace=False))
            row |= {"is_photo": True, "subtype": "photo", "caption": caption, "tags": tags,
                    "caption_score": round(float(-rng.random()), 4),
                    "output": f"photos/{folder}/scan_{i:06d}.jpg", "denoiser": "gaussian",
                    "denoise_sigma": 1.2, "sharpener": "none", "noise_before": 7.5,
                    "noise_after": 1.9, "blur_before": 1.1, "blur_after": 1.1,
                    "seconds_restore": 0.12, "seconds_caption": 0.05}  # fmt: skip
        else:
            row |= {"is_photo": False, "subtype": str(rng.choice(SUBTYPES))}
        rows.append(row)
    return rows


def write(folder: Path, rows: list[dict]) -> float:
    """Write the report of `rows` into `folder`; returns the seconds it took."""
    views = [("before", data.astronaut()), ("after", data.astronaut()[:, ::-1])]
    thumbs = write_thumbnails(folder, "shared", views)
    start = time.perf_counter()
    write_report(folder, rows, lambda path: thumbs, lambda path: f"file:///scans/{path}",
                 [("inputs", f"{len(rows):,} synthetic rows")])  # fmt: skip
    return time.perf_counter() - start


def megabytes(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def drawn_after(driver, start_ms: float, timeout: float = 30.0) -> float:
    """Milliseconds from `start_ms` (page clock) to the next drawing of the cards."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = driver.execute_script("return Number(document.body.dataset.shownAt || 0)")
        if shown > start_ms:
            return shown - start_ms
        time.sleep(0.01)
    raise TimeoutError("the report did not draw its cards")


def open_ms(driver, page: Path) -> float:
    """Navigation start to the first page of cards drawn, in ms, on a fresh load."""
    driver.get("about:blank")
    driver.get(page.as_uri())
    return drawn_after(driver, 0.0)


def action_ms(driver, script: str) -> float:
    """The time from a change of the controls to the cards drawn again, in ms."""
    start = driver.execute_script(f"const t = performance.now(); {script}; return t;")
    return drawn_after(driver, start)


ACTIONS = {
    "search a tag (beacon)": "$('search').value = 'beacon'; refresh()",
    "search a common word (dog)": "$('search').value = 'dog'; refresh()",
    "filter by class (photo)": "$('search').value = ''; $('klass').value = 'photo'; refresh()",
    "sort by p(photo), high to low": "$('order').value = 'desc'; refresh()",
    "next page": "turn(1)",
}


def measure(sizes: list[int], opens: int) -> tuple[list[dict], list[dict]]:
    sized, actions = [], []
    with (
        tempfile.TemporaryDirectory(prefix="scancap-report-") as root,
        headless_chromium() as driver,
    ):
        for count in sizes:
            folder = Path(root) / f"rows{count}"
            rows = synthetic_rows(count)
            seconds = write(folder, rows)
            page = folder / REPORT_FILE
            times = [open_ms(driver, page) for _ in range(opens)]
            assets = folder / "report"
            sized.append({
                "rows": count, "write_s": seconds, "page_mb": megabytes([page]),
                "index_mb": megabytes([assets / "index.js"]),
                "details_mb": megabytes(list(assets.glob("details/*.js"))),
                "open_median_s": statistics.median(times) / 1000, "open_max_s": max(times) / 1000,
                "cards": len(driver.find_elements("css selector", ".card")),
            })  # fmt: skip
        for name, script in ACTIONS.items():
            timings = [action_ms(driver, script) for _ in range(3)]
            actions.append({"action": name, "median_s": statistics.median(timings) / 1000})
    return sized, actions


def write_markdown(sized: list[dict], actions: list[dict], opens: int) -> Path:
    largest = sized[-1]
    met = largest["open_max_s"] <= OPEN_TARGET_SECONDS
    lines = [
        "# The HTML report at scale",
        "",
        f"Generated by `benchmarks/report_scale.py` on {date.today().isoformat()}, scancap "
        f"{__version__}, {platform.machine()}, headless Chromium (Debian), from `file://`.",
        "Synthetic rows (seeded) of the kind a run writes: 60% photos with captions, tags and "
        "measures, 38% non-photos, 2% errors. Open time: navigation start to the first page "
        f"of 50 cards drawn, as the page records it, {opens} fresh loads per size.",
        "",
        f"**{largest['rows']:,} rows: opened in {largest['open_median_s']:.2f} s (median), "
        f"{largest['open_max_s']:.2f} s at worst; target under {OPEN_TARGET_SECONDS:g} s: "
        f"{'met' if met else 'missed'}.**",
        "",
        "| rows | write (s) | report.html (MB) | index.js (MB) | details (MB) | open, median (s) "
        "| open, worst (s) | cards drawn |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sized:
        lines.append(
            f"| {r['rows']:,} | {r['write_s']:.2f} | {r['page_mb']:.3f} | {r['index_mb']:.1f} "
            f"| {r['details_mb']:.1f} | {r['open_median_s']:.2f} | {r['open_max_s']:.2f} "
            f"| {r['cards']} |"
        )
    lines += ["", f"Interactions on the {largest['rows']:,}-row report (median of 3):", "",
              "| action | seconds |", "|---|---|"]  # fmt: skip
    lines += [f"| {a['action']} | {a['median_s']:.3f} |" for a in actions]
    lines += [
        "",
        "The page holds only the summary and the script; `report/index.js` holds what "
        "filtering, search and sorting need for every row; the cards' details are loaded "
        "1,000 rows at a time as pages are turned. Thumbnails (WebP, at most 320 px a side) "
        "are separate files, loaded lazily by the browser for the 50 cards shown: "
        "`reports/pipeline.md` gives their disk space on a real run.",
        "",
    ]
    target = reports_dir() / "report.md"
    target.write_text("\n".join(lines))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,10000,100000", help="report sizes to measure")
    parser.add_argument("--opens", type=int, default=5, help="fresh loads per size")
    args = parser.parse_args()
    if not chromium_available():
        sys.exit(f"report_scale: {MISSING}")
    sizes = sorted(int(n) for n in args.rows.split(","))
    sized, actions = measure(sizes, args.opens)
    print(f"wrote {write_markdown(sized, actions, args.opens)}")


if __name__ == "__main__":
    main()
