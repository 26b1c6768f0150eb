"""A self-contained HTML report of a batch: one file, thumbnails inlined, works offline.

Summary counts, then one card per input (before/after thumbnails for photos, class,
confidence, caption, error), with client-side filtering by class and sorting by
confidence in a few lines of plain JavaScript: no network, no framework.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from scancap.io import atomic_open

THUMBNAIL_SIDE = 192  # small enough for 10,000 cards in one page

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
.summary span{display:inline-block;margin-right:1.2em}
.controls{margin:1em 0}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;width:410px}
.card.error{border-color:#c33;background:#fff5f5}
.card img{max-width:192px;max-height:192px;margin-right:4px;vertical-align:top}
.meta{font-size:13px;margin-top:4px}.caption{font-style:italic}
.err{color:#c33;font-weight:bold}
"""

_SCRIPT = """
function refresh(){
  const wanted=document.getElementById('klass').value;
  const order=document.getElementById('order').value;
  const box=document.getElementById('cards');
  const cards=[...box.children];
  cards.forEach(c=>{c.style.display=(wanted==='all'||c.dataset.klass===wanted)?'':'none';});
  if(order!=='path'){
    const sign=order==='desc'?-1:1;
    cards.sort((a,b)=>sign*(parseFloat(a.dataset.conf)-parseFloat(b.dataset.conf)));
  } else {
    cards.sort((a,b)=>a.dataset.path.localeCompare(b.dataset.path));
  }
  cards.forEach(c=>box.appendChild(c));
}
"""


def thumbnail_data_uri(image: np.ndarray, side: int = THUMBNAIL_SIDE, quality: int = 75) -> str:
    """A small JPEG of a uint8 RGB image as a data: URI (keeps the report one file)."""
    scale = side / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("could not encode thumbnail")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def row_class(row: Mapping[str, Any]) -> str:
    """The class a card is filed under: photo, a non-photo subtype, or error."""
    if row.get("status") != "ok":
        return "error"
    return "photo" if row.get("is_photo") else str(row.get("subtype") or "other")


def _card(row: Mapping[str, Any], thumbnails: list[str]) -> str:
    klass = row_class(row)
    path = str(row["path"])
    confidence = float(row.get("p_photo") or 0.0)
    images = "".join(f'<img src="{uri}" alt="{html.escape(path)}">' for uri in thumbnails)
    details = [f"<b>{html.escape(path)}</b>"]
    if klass == "error":
        details.append(f'<span class="err">error: {html.escape(str(row.get("error", "")))}</span>')
    else:
        details.append(f"class: {klass} · p(photo) = {confidence:.3f}")
        if row.get("caption"):
            details.append(f'<span class="caption">“{html.escape(str(row["caption"]))}”</span>')
        if row.get("tags"):
            details.append(f'<span class="tags">tags: {html.escape(str(row["tags"]))}</span>')
        if row.get("is_photo"):
            details.append(html.escape(restore_summary(row)))
    css = "card error" if klass == "error" else "card"
    return (
        f'<div class="{css}" data-klass="{klass}" data-conf="{confidence:.6f}" '
        f'data-path="{html.escape(path)}">{images}<div class="meta">{"<br>".join(details)}'
        "</div></div>\n"
    )


def restore_summary(row: Mapping[str, Any]) -> str:
    """What restoration did to a photo, in a few words."""
    steps = []
    if row.get("denoiser") not in (None, "", "none"):
        steps.append(f"denoised ({row['denoiser']}, σ={float(row['denoise_sigma']):.1f})")
    if row.get("sharpener") not in (None, "", "none"):
        steps.append(f"sharpened ({row['sharpener']}, σ={float(row['sharpen_sigma']):.2f})")
    return "restored: " + (", ".join(steps) if steps else "left as it was (clean and sharp)")


def report_chunks(
    rows: Sequence[Mapping[str, Any]],
    thumbnails: Callable[[str], list[str]],
    title: str = "scancap report",
    footer: str = "",
) -> Iterator[str]:
    """The HTML page in pieces, one card at a time, so a large batch never sits in memory.

    `thumbnails(path)` gives a row's data URIs (before and after for a photo).
    """
    counts = Counter(row_class(row) for row in rows)
    options = "".join(f'<option value="{k}">{k} ({n})</option>' for k, n in sorted(counts.items()))
    summary = "".join(f"<span>{k}: <b>{n}</b></span>" for k, n in sorted(counts.items()))
    yield f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="summary"><span>inputs: <b>{len(rows)}</b></span>{summary}</div>
<div class="controls">class <select id="klass" onchange="refresh()">
<option value="all">all</option>{options}</select>
sort <select id="order" onchange="refresh()"><option value="path">path</option>
<option value="desc">p(photo) high→low</option><option value="asc">p(photo) low→high</option>
</select></div>
<div class="cards" id="cards">
"""
    for row in rows:
        yield _card(row, thumbnails(str(row["path"])))
    yield f"""</div>
<p>{html.escape(footer)}</p>
<script>{_SCRIPT}</script></body></html>
"""


def write_report(
    path: Path,
    rows: Sequence[Mapping[str, Any]],
    thumbnails: Callable[[str], list[str]],
    title: str = "scancap report",
    footer: str = "",
) -> Path:
    """Stream the page into `path`, atomically."""
    with atomic_open(path, encoding="utf-8") as handle:
        for chunk in report_chunks(rows, thumbnails, title, footer):
            handle.write(chunk)
    return path
