"""What the report's tests read and feed it: the arguments of its data files, and manifest rows
of every kind (photo, text page, error) made up in turn."""

from __future__ import annotations

import json
from pathlib import Path


def script_argument(path: Path, function: str) -> list:
    """The JSON arguments of a data file `function(a, b);`."""
    text = path.read_text()
    assert text.startswith(function + "(") and text.endswith(");\n")
    return json.loads("[" + text[len(function) + 1 : -3] + "]")


def synthetic_rows(count: int) -> list[dict]:
    """Photos, texts and errors in turn, each with the manifest's fields."""
    rows = []
    for i in range(count):
        kind = ("photo", "text", "error")[i % 3]
        rows.append(
            {"path": f"scan_{i:05d}.jpg", "status": "error" if kind == "error" else "ok",
             "error": "truncated or corrupt image" if kind == "error" else "",
             "is_photo": kind == "photo", "p_photo": round(i / count, 4),
             "subtype": kind, "caption": f"a cat number {i}" if kind == "photo" else "",
             "output": f"photos/scan_{i:05d}.jpg" if kind == "photo" else "",
             "denoiser": "gaussian" if kind == "photo" else "", "denoise_sigma": 1.0,
             "noise_before": 9.0, "noise_after": 2.0, "blur_before": 1.2, "blur_after": 0.9,
             "width": 640, "height": 480}
        )  # fmt: skip
    return rows
