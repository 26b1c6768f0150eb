"""The HTML report of a batch, built to open fast at 100,000 images, from `file://`, offline.

`report.html` is a small page: the run summary, the controls and a script. The rows live
beside it in `report/`: `index.js` holds what filtering and sorting need for every row (name,
class, status, p(photo), caption, tags), one short column per field; `details/NNNN.js` hold
the cards' full fields, 1,000 rows a file, loaded only when a page of cards shows them; and
`thumbs/` holds the thumbnails as small WebP files, written as each image finishes. Data files
are scripts, not JSON, because a browser refuses to fetch JSON from `file://` but runs scripts.
Everything is plain JavaScript: no network, no framework, no server.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np

from scancap.io import atomic_write_bytes, atomic_write_text

REPORT_FILE = "report.html"
ASSETS_DIR = "report"
THUMBS_DIR = f"{ASSETS_DIR}/thumbs"
THUMBNAIL_SIDE = 320  # large enough to judge a restoration, about 15 kB as WebP
SHARD_ROWS = 1000  # rows per details file: one file covers several pages of cards
# A card's thumbnails: (label, path relative to the output folder), e.g. ("before", "report/...").
Thumbnails = list[tuple[str, str]]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{margin:0 0 .4em}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 1em;margin:0 0 1em}
dl.summary dt{font-weight:bold}dl.summary dd{margin:0;overflow-wrap:anywhere}
.controls{display:flex;flex-wrap:wrap;gap:.6em 1.2em;align-items:center;margin:1em 0;
  position:sticky;top:0;background:#fafafa;padding:.5em 0;z-index:1}
.controls input[type=search]{width:22em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px;
  align-items:start}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;min-width:0;
  box-sizing:border-box}
.card.error{border-color:#c33;background:#fff5f5;padding:4px 8px}
.figures{display:flex;gap:6px}
.card figure{flex:1 1 0;min-width:0;margin:0 0 4px}
.card figure img{width:100%;height:auto;max-height:320px;object-fit:contain;display:block;
  background:#eee}
.card figcaption{font-size:12px;color:#555;text-align:center}
.name{font-weight:bold;overflow-wrap:anywhere}
.meta{font-size:13px;margin-top:4px;line-height:1.45}
.caption{font-style:italic}.built{font-style:normal;color:#777;font-size:12px}.err{color:#c33;font-weight:bold}
.note{color:#8a5a00}
pre.text{font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f4;
  padding:4px 6px;margin:4px 0;max-height:9em;overflow:hidden}
.measures{border-collapse:collapse;font-size:12px;margin-top:4px}
.measures td{padding:1px 8px 1px 0;vertical-align:top}
.measures td:first-child{color:#555;white-space:nowrap}
.card.review{grid-column:span 2}
.card.review figure img{max-height:640px}
.verdict{margin-top:4px;font-size:13px}.verdict button{margin:2px 4px 0 0}
.verdict button.chosen{background:#2a6;color:#fff;border-color:#2a6}
.badge{display:inline-block;font-size:12px;padding:0 6px;border-radius:8px;background:#fc3}
.badge.klass{background:#e3ecf8;margin-right:4px}.badge.klass.photo{background:#d8f0dc}
.frame{position:relative;display:block}
.frame .box{position:absolute;border:2px solid #f60;box-sizing:border-box;pointer-events:none}
.frame .box span{position:absolute;top:0;left:0;background:#f60;color:#fff;font-size:11px;
  padding:0 2px;white-space:nowrap}
"""

_SCRIPT = r"""
const S = {index: null, shards: {}, waiting: {}, order: [], page: 0, hay: null};
const PER_PAGE = 50;
const $ = id => document.getElementById(id);
function scancapIndex(data) { S.index = data; }
function scancapDetails(shard, rows) {
  S.shards[shard] = rows;
  (S.waiting[shard] || []).forEach(done => done());
  delete S.waiting[shard];
}
function loadShard(shard) {
  return new Promise(done => {
    if (S.shards[shard]) return done();
    const first = !S.waiting[shard];
    (S.waiting[shard] = S.waiting[shard] || []).push(done);
    if (!first) return;
    const script = document.createElement('script');
    script.src = `report/details/${String(shard).padStart(4, '0')}.js`;
    script.onerror = () => scancapDetails(shard, []);
    document.head.appendChild(script);
  });
}
function matching() {
  const ix = S.index, klass = $('klass').value, status = $('status').value;
  const review = $('review').value === 'needs';
  const query = $('search').value.trim().toLowerCase();
  if (query && !S.hay) {
    S.hay = ix.path.map((p, i) =>
      [p, ix.caption[i], ix.tags[i], ix.objects[i], ix.title[i]].join('\n').toLowerCase());
  }
  const rows = [];
  for (let i = 0; i < ix.path.length; i++) {
    if (klass !== 'all' && ix.classes[ix.klass[i]] !== klass) continue;
    if (status !== 'all' && ix.statuses[ix.status[i]] !== status) continue;
    if (query && !S.hay[i].includes(query)) continue;
    rows.push(i);
  }
  const order = $('order').value, p = ix.p_photo;
  const value = i => (p[i] === null ? -1 : p[i]);
  if (order === 'desc') rows.sort((a, b) => value(b) - value(a) || a - b);
  if (order === 'asc') rows.sort((a, b) => value(a) - value(b) || a - b);
  if (review) rows.sort((a, b) => ix.review[b] - ix.review[a]);  // stable: the rest keep order
  return rows;
}
function refresh() { S.order = matching(); S.page = 0; show(); }
function turn(step) { S.page += step; show(); }
async function show() {
  const pages = Math.max(1, Math.ceil(S.order.length / PER_PAGE));
  S.page = Math.min(Math.max(S.page, 0), pages - 1);
  const shown = S.order.slice(S.page * PER_PAGE, (S.page + 1) * PER_PAGE);
  const ticket = (S.ticket = (S.ticket || 0) + 1);
  await Promise.all([...new Set(shown.map(i => Math.floor(i / S.index.shard)))].map(loadShard));
  if (ticket !== S.ticket) return;  // a newer request replaced this one while files loaded
  const box = $('cards');
  box.replaceChildren(...shown.map(card));
  $('position').textContent =
    `${S.order.length} matching · page ${S.page + 1} of ${pages}`;
  $('previous').disabled = S.page === 0;
  $('next').disabled = S.page >= pages - 1;
  document.body.dataset.shownAt = performance.now().toFixed(0);
}
function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  Object.entries(attributes || {}).forEach(([k, v]) => node.setAttribute(k, v));
  node.append(...children.filter(c => c !== null && c !== undefined && c !== ''));
  return node;
}
function figure(label, src, href, objects) {
  const image = element('img', {src: src, alt: label, loading: 'lazy'});
  const linked = href ? element('a', {href: href}, image) : image;
  const shown = objects && objects.length && $('boxes').checked ? framed(linked, objects) : linked;
  return element('figure', {}, shown, element('figcaption', {}, label));
}
function framed(picture, objects) {  // each detection's box over the photo, in percent
  const boxes = objects.map(o => {
    const [x0, y0, x1, y1] = o.box.map(v => (100 * v).toFixed(2) + '%');
    const style = `left:${x0};top:${y0};width:calc(${x1} - ${x0});height:calc(${y1} - ${y0})`;
    return element('div', {class: 'box', style: style},
                   element('span', {}, `${o.label} ${o.score.toFixed(2)}`));
  });
  return element('span', {class: 'frame'}, picture, ...boxes);
}
function card(i) {
  const d = S.shards[Math.floor(i / S.index.shard)][i % S.index.shard];
  if (!d) return element('div', {class: 'card error'}, 'details missing for row ' + i);
  const large = $('review').value === 'needs' && S.index.review[i];
  const figures = d.thumbs.map(([label, src]) => {
    const first = label === 'before' || label === 'original' || label === 'unchanged';
    // a doubtful item is judged on its original file, when it is an image (not a PDF page)
    const judged = large && first && d.source && !d.source.includes('#page=') ? d.source : src;
    return figure(label, judged, first ? d.source : d.output, d.objects);
  });
  const meta = element('div', {class: 'meta'}, element('div', {class: 'name'}, d.path));
  const p = S.index.p_photo[i];  // every card names its class at a glance
  const said = d.klass + (p === null ? '' : ` · p(photo) ${p.toFixed(2)}`);
  meta.append(element('span', {class: 'badge klass ' + d.klass}, said));
  if (S.index.review[i]) meta.append(element('span', {class: 'badge'}, 'needs review'));
  if (d.error) meta.append(element('div', {class: 'err'}, 'error: ' + d.error));
  if (d.notes) meta.append(element('div', {class: 'note'}, 'note: ' + d.notes));
  if (d.caption) meta.append(element('div', {class: 'caption'}, '“' + d.caption + '”',
    d.built ? element('span', {class: 'built'}, ' (from the evidence: scene and objects)') : ''));
  if (d.tags) meta.append(element('div', {class: 'tags'}, 'tags: ' + d.tags));
  const counts = d.object_counts;
  if (counts) meta.append(element('div', {class: 'objects'}, 'objects: ' + counts));
  if (d.text) meta.append(element('pre', {class: 'text'}, d.text));
  const links = element('div', {});
  if (d.output) links.append(element('a', {href: d.output}, 'full-size output'), ' · ');
  if (d.text_file) links.append(element('a', {href: d.text_file}, 'text'), ' · ');
  if (d.text_pdf) links.append(element('a', {href: d.text_pdf}, 'searchable PDF'), ' · ');
  if (d.source) links.append(element('a', {href: d.source}, 'original'));
  meta.append(links);
  const table = element('table', {class: 'measures'});
  d.measures.forEach(([name, value]) =>
    table.append(element('tr', {}, element('td', {}, name), element('td', {}, value))));
  meta.append(table);
  if (d.file && !d.error) meta.append(verdict(d.file));
  const css = 'card' + (d.error ? ' error' : '') + (large ? ' review' : '');
  const pictures = figures.length ? element('div', {class: 'figures'}, ...figures) : '';
  return element('div', {class: css, 'data-klass': d.klass, 'data-path': d.path},
                 pictures, meta);
}
const LABELS = ['photo', 'painting', 'schematic', 'text', 'sketch'];
S.labels = {};
function verdict(file) {
  const box = element('div', {class: 'verdict'}, 'correct it: ');
  LABELS.forEach(label => {
    const button = element('button', {type: 'button', 'data-label': label}, label);
    if (S.labels[file] === label) button.classList.add('chosen');
    button.addEventListener('click', () => {
      if (S.labels[file] === label) delete S.labels[file]; else S.labels[file] = label;
      box.querySelectorAll('button').forEach(b =>
        b.classList.toggle('chosen', S.labels[file] === b.dataset.label));
      $('download').textContent = `download corrections (${Object.keys(S.labels).length})`;
    });
    box.append(button);
  });
  return box;
}
function csvCell(text) { return /[",\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text; }
function correctionsCsv() {  // what `scancap adapt` reads: where each page is, and its label
  const rows = Object.entries(S.labels).map(([file, label]) => csvCell(file) + ',' + label);
  return 'path,label\n' + rows.map(r => r + '\n').join('');
}
function download() {
  const blob = new Blob([correctionsCsv()], {type: 'text/csv'});
  const link = element('a', {href: URL.createObjectURL(blob), download: 'corrections.csv'});
  document.body.append(link); link.click(); link.remove();
}
document.addEventListener('DOMContentLoaded', () => {
  let typing;
  $('search').addEventListener('input', () => { clearTimeout(typing);
    typing = setTimeout(refresh, 200); });
  ['klass', 'status', 'order', 'review'].forEach(id => $(id).addEventListener('change', refresh));
  $('download').addEventListener('click', download);
  $('previous').addEventListener('click', () => turn(-1));
  $('next').addEventListener('click', () => turn(1));
  $('boxes').addEventListener('change', show);  // the same cards, with or without boxes
  if (!S.index) { $('position').textContent = 'report/index.js is missing'; return; }
  refresh();
});
"""


def thumbnail_key(path: str) -> str:
    """A file-name-safe key for a row's thumbnails, stable across runs of the same input."""
    return hashlib.sha1(path.encode()).hexdigest()[:20]


def encode_thumbnail(image: np.ndarray, side: int = THUMBNAIL_SIDE, quality: int = 80) -> bytes:
    """A uint8 RGB image shrunk to at most `side` pixels a side, as WebP bytes."""
    scale = side / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(
        ".webp", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality]
    )
    if not ok:
        raise ValueError("could not encode a thumbnail")
    return encoded.tobytes()


def write_thumbnails(out: Path, path: str, images: Sequence[tuple[str, np.ndarray]]) -> Thumbnails:
    """Each (label, image) as `report/thumbs/<key>.<label>.webp` under `out`, atomically."""
    key = thumbnail_key(path)
    written = []
    for label, image in images:
        relative = f"{THUMBS_DIR}/{key}.{label}.webp"
        atomic_write_bytes(out / relative, encode_thumbnail(image))
        written.append((label, relative))
    return written


def row_class(row: Mapping[str, Any]) -> str:
    """The class a card is filed under: photo, a non-photo subtype, or error."""
    if row.get("status") != "ok":
        return "error"
    return "photo" if row.get("is_photo") else str(row.get("subtype") or "other")


def restore_summary(row: Mapping[str, Any]) -> str:
    """What restoration did to a photo, in a few words."""
    steps = []
    if row.get("denoiser") not in (None, "", "none"):
        steps.append(f"denoised ({row['denoiser']}, σ={float(row['denoise_sigma']):.1f})")
    if row.get("sharpener") not in (None, "", "none"):
        steps.append(f"sharpened ({row['sharpener']}, σ={float(row['sharpen_sigma']):.2f})")
    return ", ".join(steps) if steps else "left as it was (clean and sharp)"


def was_restored(row: Mapping[str, Any]) -> bool:
    """Whether restoration changed the pixels (else the card shows one image, not two)."""
    return any(row.get(step) not in (None, "", "none") for step in ("denoiser", "sharpener"))


def _number(value: Any, digits: int) -> str:
    return "–" if value is None or value == "" else f"{float(value):.{digits}f}"


def _change(row: Mapping[str, Any], measure: str, digits: int) -> str:
    """ "before → after" of one restoration measure ("no edges to measure" for a smooth page,
    where the edge blur has no value)."""
    before = _number(row.get(f"{measure}_before"), digits)
    after = _number(row.get(f"{measure}_after"), digits)
    if before == after == "–":
        return "no edges to measure" if measure == "blur" else "not measured"
    return f"{before} → {after}"


def row_measures(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The card's table: confidence, restoration measures and decisions, timings."""
    if row.get("status") != "ok":
        return []
    measures = [("p(photo)", _number(row.get("p_photo"), 3))]
    if row.get("width"):
        measures.append(("size", f"{row['width']} × {row['height']} px"))
    if row.get("is_photo"):
        measures += [
            ("noise σ", _change(row, "noise", 2)),
            ("edge blur", _change(row, "blur", 3)),
            ("restoration", restore_summary(row)),
            ("caption score", _number(row.get("caption_score"), 3)),
        ]
        if row.get("restore_notes"):
            measures.append(("notes", str(row["restore_notes"])))
    if _number(row.get("text_lines"), 0) not in ("–", "nan") and not row.get("is_photo"):
        measures.append(("text lines", _number(row["text_lines"], 0)))
    if row.get("text_file"):
        measures += [
            ("language", str(row.get("language") or "not told")),
            ("OCR confidence", _number(row.get("ocr_confidence"), 1)),
        ]
    stages = ("decode", "classify", "restore", "caption", "ocr")
    timings = [f"{s} {float(row.get(f'seconds_{s}') or 0):.3f}" for s in stages]
    measures.append(("seconds", " · ".join(timings)))
    return measures


def _details(row: Mapping[str, Any], thumbnails: Thumbnails, source: str) -> dict[str, Any]:
    """One card's fields, as the page's script reads them."""
    return {
        "path": str(row["path"]),
        "klass": row_class(row),
        "error": str(row.get("error") or ""),
        "notes": str(row.get("notes") or ""),
        "caption": str(row.get("caption") or ""),
        "built": row.get("caption_source") == "evidence",
        "tags": str(row.get("tags") or ""),
        "objects": json.loads(row.get("objects") or "[]"),
        "object_counts": str(row.get("object_counts") or ""),
        "text": first_lines(str(row.get("text") or "")),
        "text_file": quote(str(row.get("text_file") or "")),
        "text_pdf": quote(str(row.get("text_pdf") or "")),
        "output": quote(str(row.get("output") or "")),  # a link: "#" or "?" in a name is text
        "source": source,
        "file": str(row.get("file") or ""),  # where the page is: what a correction names
        "thumbs": [list(pair) for pair in thumbnails],
        "measures": [list(pair) for pair in row_measures(row)],
    }


def _index(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What filtering, search and sorting need for every row, one column per field."""
    classes = sorted({row_class(row) for row in rows})
    statuses = ["ok", "error"]
    return {
        "shard": SHARD_ROWS,
        "classes": classes,
        "statuses": statuses,
        "path": [str(row["path"]) for row in rows],
        "klass": [classes.index(row_class(row)) for row in rows],
        "status": [statuses.index("ok" if row.get("status") == "ok" else "error") for row in rows],
        "p_photo": [
            None if row.get("p_photo") is None else round(float(row["p_photo"]), 4) for row in rows
        ],  # fmt: skip
        "caption": [str(row.get("caption") or "") for row in rows],
        "tags": [str(row.get("tags") or "") for row in rows],
        "objects": [str(row.get("object_counts") or "") for row in rows],
        "title": [str(row.get("title") or "") for row in rows],
        "review": [int(bool(row.get("needs_review"))) for row in rows],
    }


def first_lines(text: str, lines: int = 6, characters: int = 480) -> str:
    """The start of a page's text for its card: a few non-empty lines, cut at a length."""
    kept = [line for line in text.splitlines() if line.strip()][:lines]
    start = "\n".join(kept)
    return start if len(start) <= characters else start[: characters - 1] + "…"


def _script_call(function: str, *arguments: Any) -> str:
    """`function(arg, ...);` with the arguments as JSON (ASCII, so any name is safe)."""
    return f"{function}({','.join(json.dumps(a, separators=(',', ':')) for a in arguments)});\n"


def _page(title: str, summary: Sequence[tuple[str, str]], counts: Counter, reviews: int) -> str:
    items = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd>" for key, value in summary
    )
    options = "".join(
        f'<option value="{html.escape(k)}">{html.escape(k)} ({n})</option>'
        for k, n in sorted(counts.items())
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<dl class="summary">{items}</dl>
<div class="controls">
<label>class <select id="klass"><option value="all">all</option>{options}</select></label>
<label>status <select id="status"><option value="all">all</option><option value="ok">ok</option>
<option value="error">error</option></select></label>
<label>search <input id="search" type="search"
  placeholder="name, caption, tag, object or title"></label>
<label>sort <select id="order"><option value="path">input order</option>
<option value="desc">p(photo) high → low</option><option value="asc">p(photo) low → high</option>
</select></label>
<label>review <select id="review"><option value="all">all</option>
<option value="needs">needs review first ({reviews})</option></select></label>
<label><input id="boxes" type="checkbox"> object boxes</label>
<button id="download" type="button">download corrections (0)</button>
<button id="previous">◀ previous</button><span id="position"></span>
<button id="next">next ▶</button>
</div>
<div class="cards" id="cards"></div>
<script>{_SCRIPT}</script>
<script src="{ASSETS_DIR}/index.js" charset="utf-8"></script></body></html>
"""


def write_report(
    out: Path,
    rows: Sequence[Mapping[str, Any]],
    thumbnails: Callable[[str], Thumbnails],
    sources: Callable[[str], str],
    summary: Sequence[tuple[str, str]],
    title: str = "scancap report",
) -> Path:
    """`report.html` and its data files under `out`, each written atomically.

    `thumbnails(path)` gives a row's (label, relative file) pairs, `sources(path)` the link
    to its original; `summary` is the run's (label, value) pairs shown at the top.
    """
    atomic_write_text(out / ASSETS_DIR / "index.js", _script_call("scancapIndex", _index(rows)))
    for start in range(0, len(rows), SHARD_ROWS):
        shard = [
            _details(row, thumbnails(str(row["path"])), sources(str(row["path"])))
            for row in rows[start : start + SHARD_ROWS]
        ]
        target = out / ASSETS_DIR / "details" / f"{start // SHARD_ROWS:04d}.js"
        atomic_write_text(target, _script_call("scancapDetails", start // SHARD_ROWS, shard))
    counts = Counter(row_class(row) for row in rows)
    reviews = sum(bool(row.get("needs_review")) for row in rows)
    return atomic_write_text(out / REPORT_FILE, _page(title, summary, counts, reviews))
