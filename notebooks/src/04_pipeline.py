# %% [markdown]
# # scancap 4 — The product: a folder of scans in, sorted, restored and captioned results out
#
# The fourth deliverable ties the three stages together, as the client runs them every day:
#
# 1. **classify** every image (photo or not, and the subtype of non-photos: `scancap.classify`);
# 2. **restore** photos (blind denoising and sharpening: `scancap.restore`);
# 3. **caption** the restored photos (`scancap.caption`);
#
# and write a manifest (Parquet and CSV), the restored photos, `captions.jsonl` and an HTML
# report. The notebook calls `scancap.pipeline` (the same code as `scancap run`), holds no logic
# of its own, and shows: the settings, a run on the shipped samples with the report inline,
# what happens to degraded photos, resuming, the Python API and the HTTP service, and the
# measured speed and memory (`benchmarks/pipeline.py`, `reports/pipeline.md`).
#
# Run headless: `python notebooks/build.py 04 --execute` (full) or with `--fast`
# (`SCANCAP_FAST=1`: fewer degraded photos and a small study; used by the test suite).

# %%
import json
import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd

# Starlette's TestClient now prefers httpx2, which the package index does not have yet.
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient` is deprecated")
from fastapi.testclient import TestClient  # noqa: E402
from IPython.display import Markdown, display
from skimage import data as skdata

from scancap import Pipeline, RunConfig
from scancap.engines.local import run_pipeline
from scancap.io import load_image
from scancap.paths import data_dir
from scancap.pipeline.compose import MANIFEST_COLUMNS
from scancap.service import create_app
from scancap_lab.figures import show_images
from scancap_lab.paths import REPO_ROOT, reports_dir
from scancap_lab.pipeline.bench import degraded_versions, restoration_caption_study
from scancap_lab.restore import benchmark

FAST = os.environ.get("SCANCAP_FAST") == "1"
DATA = data_dir()
SAMPLES = REPO_ROOT / "samples"
WORK = Path(tempfile.mkdtemp(prefix="scancap-notebook-"))
pd.set_option("display.width", 160, "display.max_colwidth", 60)
print(f"data: {DATA}  fast mode: {FAST}  outputs under {WORK}")

# %% [markdown]
# ## 1. Settings
#
# Every setting has a default in code (`RunConfig`), which a TOML file (`--config`, a `[run]`
# table) and then command-line flags override. `threshold=None` means "the classifier's
# calibrated threshold from its model card" (chosen on val for 99% photo precision).
# `auto-fast` is the restoration used by default for throughput; `auto` (DCT-Wiener + Wiener
# deconvolution) is better on heavy noise and much slower. The restoration benchmark's committed
# results (`reports/restoration_results.csv`, CBSD68: mean PSNR per degradation, then median
# seconds per megapixel) show by how much.

# %%
display(pd.Series(RunConfig().settings(), name="default").to_frame())

# %%
restoration = pd.read_csv(reports_dir() / "restoration_results.csv")
modes = restoration[restoration["family"].isin(["auto-fast", "auto"])]
display(benchmark.pivot(benchmark.best_settings(modes), "CBSD68", "psnr").round(2))
display(benchmark.speed_table(modes).round(3))

# %% [markdown]
# ## 2. A run on the shipped samples
#
# `scancap run samples --out OUT` is the README's main command; here the same function is
# called from Python. The models load once (`Pipeline.load`). Every image gets one pass of
# the classifier's backbone (EfficientNet-Lite0); each photo, once restored, one pass of the
# captioner's (MobileNetV2), whose grid the caption grounding's detectors read as well. The
# person detector also reads the classifier's Lite0 grid of the photo as it came in, which the
# pipeline hands over instead of computing it again.

# %%
pipeline = Pipeline.load(RunConfig(copy_non_photos=True))
out = WORK / "samples_run"
summary = run_pipeline(pipeline, [SAMPLES], out, progress=False)
print(summary.text())

# %%
manifest = pd.read_parquet(out / "manifest.parquet")
print(f"{len(manifest.columns)} manifest columns: {', '.join(MANIFEST_COLUMNS)}")
display(manifest[["path", "is_photo", "p_photo", "subtype", "denoiser", "caption"]])

# %% [markdown]
# Photos were restored into `photos/`, non-photos copied unmodified into `sorted/<subtype>/`
# (the `copy_non_photos` option), captions are in `captions.jsonl`:

# %%
print(sorted(str(p.relative_to(out)) for p in out.rglob("*")
             if p.is_file() and p.relative_to(out).parts[0] != "report"))
print((out / "captions.jsonl").read_text())

# %% [markdown]
# ### The report
#
# `report.html` is a small page that opens offline in any browser, from the output folder
# (`file://`, no server). Its data sit beside it in `report/`: one file with what filtering
# and sorting need for every row, the cards' details in files of 1,000 rows loaded as the
# pages are turned, and the thumbnails as small WebP files written as each image finishes, so
# the page opens quickly even at 100,000 images (`reports/report.md` measures it). Each
# card shows a photo before and after restoration, labelled, or one image when restoration
# left it unchanged, and links to the full-size output and the original. Here are the
# thumbnails of the photos restoration changed:

# %%
print(sorted(p.relative_to(out).as_posix() for p in (out / "report").glob("*.js")),
      len(list((out / "report" / "thumbs").iterdir())), "thumbnails")
changed = sorted((out / "report" / "thumbs").glob("*.before.webp"))
pairs = [view for before in changed
         for view in (before, before.with_name(before.name.replace(".before.", ".after.")))]
figure = show_images([load_image(p) for p in pairs], [p.name.split(".")[1] for p in pairs],
                     columns=2, size=4.2)

# %% [markdown]
# ## 3. Degraded photos, end to end
#
# Real scans of prints are noisy and soft. We degrade photos the way the restoration benchmark
# does (seeded Gaussian noise σ=25, Gaussian blur σ_b=1.5, both) and send each copy through the
# whole pipeline, here with the better `auto` restoration. For each: was it still recognised as
# a photo, what did restoration measure and do, and what caption came out.

# %%
dev = sorted((DATA / "flickr8k" / "images").glob("*.jpg"))
photos = {"chelsea": skdata.chelsea()} | {p.stem: load_image(p) for p in dev[: 0 if FAST else 3]}
careful = Pipeline(pipeline.classifier, pipeline.captioner, RunConfig(restore_mode="auto"))
rows, shown, titles = [], [], []
for name, clean in photos.items():
    for condition, degraded in {"clean": clean, **degraded_versions(clean)}.items():
        result = careful.analyze(degraded, name=f"{name} / {condition}")
        rows.append(result.row())
        if condition != "clean" and result.is_photo:
            shown += [degraded, result.restored]
            titles += [f"{condition}\n(input)", f"restored\n“{result.caption}”"]
table = pd.DataFrame(rows)
display(table[["path", "is_photo", "p_photo", "noise_before", "noise_after", "blur_before",
               "denoiser", "sharpener", "caption"]])

# %%
figure = show_images(shown[:6], titles[:6], columns=2, size=4.2)

# %% [markdown]
# **What this shows.** Blur alone rarely changes the decision, but heavy noise (σ=25) can push
# a photo below the photo threshold, typically to "painting": classification comes *before*
# restoration, so such a photo is sorted as a non-photo and neither restored nor captioned.
# Precision on photo is the priority (a non-photo sent to captioning is the worse error), and
# this is its price on very noisy scans. The share of the Flickr8k dev photos still sorted
# as photos under each degradation, as `benchmarks/pipeline.py robustness` last measured it
# with the shipped classifier (`reports/pipeline.md`):

# %%
display(pd.read_csv(reports_dir() / "pipeline_results" / "robustness.csv").round(3))

# %% [markdown]
# ## 4. Resuming: a rerun does only what is missing
#
# Each finished image is committed to an SQLite ledger in OUT (keyed by relative path, content
# hash and the fingerprint of the settings and models in `run.json`) the moment it is done, so a
# run stopped by a crash, kill -9 or Ctrl-C resumes where it stopped. A rerun on the same inputs
# with the same settings processes nothing and rewrites the same manifest (the test suite kills
# a real run midway and checks this); a rerun with other settings processes again what they
# change, and says so.

# %%
again = run_pipeline(pipeline, [SAMPLES], out, progress=False)
print(again.text())
pd.testing.assert_frame_equal(pd.read_parquet(out / "manifest.parquet"), manifest)
print("same manifest, every input exactly once:", manifest["path"].is_unique)

# %% [markdown]
# ## 5. The Python API and the HTTP service
#
# `from scancap import Pipeline`; `Pipeline.load().analyze(path_or_array)` returns a typed
# `Result` with the manifest fields (and the restored pixels). `scancap serve` puts the same
# object behind FastAPI: `POST /v1/analyze` with a multipart image. Here the service runs
# in-process with FastAPI's test client (the test suite also starts a real uvicorn process).

# %%
result = pipeline.analyze(SAMPLES / "photo_200557981_f800fa1af9.jpg")
print(type(result).__name__, {k: v for k, v in result.row().items() if k.startswith(("is_", "p_", "cap"))})
with TestClient(create_app(pipeline)) as client:
    photo = SAMPLES / "photo_Building.png"
    answer = client.post("/v1/analyze", files={"file": (photo.name, photo.read_bytes())})
    print(answer.status_code, json.dumps({k: answer.json()[k] for k in ("path", "p_photo", "caption")}))
    bad = client.post("/v1/analyze", files={"file": ("notes.jpg", b"not an image")})
    print(bad.status_code, bad.json())

# %% [markdown]
# ## 6. Does restoration help captioning?
#
# The captioner was trained on clean Flickr8k photos. On Flickr8k dev, each photo is captioned
# clean, degraded, and restored (blind `auto` and `auto-fast`); BLEU-4 and CIDEr-D against the
# 5 references. The full study (every dev image) is run by `python benchmarks/pipeline.py study`
# into `reports/pipeline.md`; here it runs on a few images to show the procedure, then the
# committed full result is shown.

# %%
small = restoration_caption_study(limit=2 if FAST else 40, ptb=not FAST)  # fast: no Java tokenizer
display(small.drop(columns=["images"]).round(3))

# %%
full_study = reports_dir() / "pipeline_results" / "study.csv"
if full_study.exists():
    display(Markdown("**Full study, from `reports/pipeline_results/study.csv`:**"))
    display(pd.read_csv(full_study).drop(columns=["seconds"]).round(3))

# %% [markdown]
# ## 7. Speed and memory
#
# Measured by `benchmarks/pipeline.py` on the 2-core machine, in a fresh process each time
# (throughput on photos of 224–1024 px with `auto-fast`; peak memory on a large run: `inputs`
# gives the size of each); the full tables and their discussion are in `reports/pipeline.md`.

# %%
for part in ("throughput", "memory"):
    path = reports_dir() / "pipeline_results" / f"{part}.json"
    if path.exists():
        display(pd.Series(json.loads(path.read_text()), name=part).to_frame())

# %%
pipeline.close()
