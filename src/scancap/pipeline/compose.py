"""The item composition: one page in; classified, restored, captioned and read out.

Per page: classify -> if photo: restore -> caption the restored photo; a page with text is
read by OCR. The classifier runs its own backbone (EfficientNet-Lite0) on every page; the
captioner's (MobileNetV2) runs on the photos only, after restoration, on the pixels it will
describe. The neural stages run on batches and restoration on worker threads, each image under
a time limit. `Pipeline` knows no engine: the engines (`scancap.engines`) and the service feed
it batches of decoded pages and write what it returns (`scancap.pipeline.outputs`).
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scancap import __version__
from scancap.batch import Loaded, load_or_error
from scancap.caption.detector import count_tags
from scancap.caption.grounding import format_tags
from scancap.config import RunConfig
from scancap.io import (
    ImageLoadError,
)
from scancap.metadata import ScanMetadata, dropped_note
from scancap.ocr.reader import TEXT_SUBTYPE, Reading, TextReader
from scancap.pages import Page, as_page, list_pages, page_metadata
from scancap.paths import models_dir
from scancap.pipeline.provenance import Provenance, file_sha256, folder_sha256
from scancap.restore.auto import RestoreRecord
from scancap.restore.workers import RestoreWorkers

if TYPE_CHECKING:  # TensorFlow loads with the models, not with this module (Ray's driver)
    from scancap.caption.model import Captioner
    from scancap.classify.model import Classifier, Prediction
    from scancap.ocr.engine import PageText

NEURAL_BATCH = 32  # backbone images per forward pass: as fast per image as larger ones on CPU


@dataclass
class Result:
    """One input's manifest row; `restored` (not in the manifest) holds a photo's new pixels."""

    path: str
    sha256: str = ""
    width: int | None = None
    height: int | None = None
    status: str = "ok"
    error: str = ""
    notes: str = ""  # what a reader should know that is not an error: metadata dropped, no text
    is_photo: bool | None = None
    p_photo: float | None = None
    subtype: str = ""
    needs_review: bool | None = None  # inside the classifier's review band: worth a look
    noise_before: float | None = None
    blur_before: float | None = None
    noise_after: float | None = None
    blur_after: float | None = None
    denoiser: str = ""
    denoise_sigma: float | None = None
    sharpener: str = ""
    sharpen_sigma: float | None = None
    restore_notes: str = ""
    caption: str = ""
    caption_score: float | None = None
    caption_source: str = ""  # "decoder", or "evidence" where grounding built it (scene.py)
    tags: str = ""  # grounded keywords with probabilities, "lighthouse:0.62; seashore:0.21"
    objects: str = ""  # COCO detections as JSON: [{"label", "score", "box": [x0, y0, x1, y1]}]
    object_counts: str = ""  # the detections counted, "3 people, 2 cars"
    text_lines: int | None = None  # lines of text the check found on a non-photo
    title: str = ""  # a text page's first line
    text: str = ""  # a text page's text, as Tesseract laid it out
    language: str = ""  # "eng" or "fra", from the text's function words
    ocr_confidence: float | None = None  # mean word confidence, 0-100
    text_file: str = ""  # the text as a file: texts/<name>.txt
    text_pdf: str = ""  # with --searchable-pdf: searchable/<name>.pdf
    output: str = ""
    file: str = ""  # where the page is, from any folder (`scancap review` reads it)
    seconds_decode: float = 0.0
    seconds_classify: float = 0.0
    seconds_restore: float = 0.0
    seconds_caption: float = 0.0
    seconds_ocr: float = 0.0
    restored: np.ndarray | None = field(default=None, repr=False, compare=False)
    pdf: bytes | None = field(default=None, repr=False, compare=False)  # searchable, unwritten
    page: Page | None = field(default=None, repr=False, compare=False)  # its file, for OCR
    # What its file carries besides pixels, read once: notes, OCR's dpi, the restored file's.
    metadata: ScanMetadata | None = field(default=None, repr=False, compare=False)

    def row(self) -> dict[str, Any]:
        """The manifest fields as plain values."""
        return {name: getattr(self, name) for name in MANIFEST_COLUMNS}

    def fail(self, reason: str) -> None:
        self.status, self.error = "error", reason

    @property
    def resolution(self) -> float | None:
        """The dpi the page's file records (a PDF page: its render dpi), if any."""
        return self.metadata.resolution if self.metadata else None

    def add_note(self, note: str) -> None:
        if note:
            self.notes = f"{self.notes}; {note}" if self.notes else note

    def set_prediction(self, prediction: Prediction) -> None:
        self.is_photo = prediction.is_photo
        self.p_photo = round(prediction.p_photo, 6)
        self.subtype = prediction.subtype
        self.needs_review = prediction.needs_review

    def set_restoration(self, record: RestoreRecord) -> None:
        self.noise_before = _rounded(record.before.noise_sigma)
        self.blur_before = _rounded(record.before.edge_blur)
        self.noise_after = _rounded(record.after.noise_sigma)
        self.blur_after = _rounded(record.after.edge_blur)
        self.denoiser, self.denoise_sigma = record.denoiser, _rounded(record.denoise_sigma)
        self.sharpener, self.sharpen_sigma = record.sharpener, _rounded(record.sharpen_sigma)
        self.restore_notes = "; ".join(record.notes)
        self.seconds_restore = _rounded(record.seconds)

    def set_reading(self, reading: Reading) -> None:
        """What the text check found and OCR read; a page whose reading failed stays sorted
        and its error says why. A page mostly covered in text lines is a text page."""
        if reading.presence is not None:
            self.text_lines = reading.presence.lines
        if reading.error:
            self.error = f"OCR: {reading.error}"
        if reading.text_dominates and self.subtype != TEXT_SUBTYPE:
            self.add_note(f"text lines hold most of its ink: a text page (the subtype head "
                          f"said {self.subtype})")  # fmt: skip
            self.subtype = TEXT_SUBTYPE
        if reading.text is not None:
            self.set_text(reading.text)

    def set_text(self, page: PageText) -> None:
        """What OCR read; the searchable PDF waits in `pdf` until the outputs are written."""
        self.title, self.text, self.language = page.title, page.text, page.language
        self.ocr_confidence = page.confidence
        self.seconds_ocr, self.pdf = page.seconds, page.pdf
        self.add_note(page.note)


# The manifest's columns: every field but the working values (compare=False), which are not kept.
MANIFEST_COLUMNS = [f.name for f in fields(Result) if f.compare]


def _rounded(value: float, digits: int = 4) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


@dataclass
class Batch:
    """A batch between the two phases: classified, its photos being restored and its text
    pages being read."""

    items: list[tuple[Result, Loaded]]
    photos: list[tuple[Result, np.ndarray]]  # (result, pixels)
    jobs: list[Future]
    reading: list[tuple[Result, Future]] = field(default_factory=list)
    lite0: np.ndarray | None = None  # the photos' Lite0 grids, from the classifier


# --- the pipeline -------------------------------------------------------------------------------


class Pipeline:
    """The three stages with their models loaded once; `analyze` one image, `run` a batch."""

    def __init__(
        self,
        classifier: Classifier,
        captioner: Captioner,
        config: RunConfig | None = None,
        model_dirs: dict[str, Path] | None = None,
    ) -> None:
        config = config or RunConfig()
        self.classifier, self.captioner, self.config = classifier, captioner, config
        if not config.objects and captioner.grounding is not None:
            captioner.grounding.objects = None  # no detector: the object rule has no evidence
        # Where the models came from, for run.json (the shipped ones unless said otherwise).
        self.model_dirs = model_dirs or model_folders()
        self.restorer = RestoreWorkers(
            config.restore_mode,
            config.restore_strength,
            config.workers,
            config.time_limit,
            config.pixel_budget,
        )
        self.reader = TextReader.start(config)

    @classmethod
    def load(cls, config: RunConfig | None = None, models: Path | None = None) -> Pipeline:
        """The shipped models (or those under `models/`), configured by `config`."""
        config = config or RunConfig()
        dirs = model_folders(models)
        from scancap.caption.model import Captioner
        from scancap.classify.model import Classifier

        classifier = Classifier.load(dirs["classifier"], config.threshold)
        captioner = Captioner.load(dirs["captioner"])
        return cls(classifier, captioner, config, dirs)

    def provenance(self) -> Provenance:
        """scancap's version, the effective settings and the models' content hashes."""
        threshold = self.classifier.calibration.threshold
        return run_provenance(self.config, self.model_dirs, threshold)

    def close(self) -> None:
        self.restorer.close()
        self.reader.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- one batch of decoded images -------------------------------------------------------------

    def analyze_loaded(self, items: list[tuple[Result, Loaded]]) -> list[Result]:
        """Classify, restore and caption a batch; each Result is filled in place and returned."""
        return self.finish_batch(self.start_batch(items))

    def start_batch(self, items: list[tuple[Result, Loaded]]) -> Batch:
        """Classify a batch and start restoring its photos (on the worker threads).

        `run` starts the next batch before finishing this one, so that restoration overlaps
        the next classification instead of leaving a core idle.
        """
        for result, image in items:
            if isinstance(image, ImageLoadError):
                result.fail(image.reason)
        ok = [(result, image) for result, image in items if isinstance(image, np.ndarray)]
        if not ok:
            return Batch(items, [], [])
        results, images = [list(x) for x in zip(*ok, strict=True)]
        start = time.perf_counter()
        predictions, lite0 = self.classifier.predict_with_features(images, NEURAL_BATCH)
        per_image = (time.perf_counter() - start) / len(images)
        photos = []
        for result, image, prediction in zip(results, images, predictions, strict=True):
            result.height, result.width = image.shape[:2]
            result.file = result.file or (result.page.location() if result.page else "")
            if result.page is not None:
                result.metadata = page_metadata(result.page)
                result.add_note(dropped_note(result.metadata))
            result.set_prediction(prediction)
            result.seconds_classify = round(per_image, 4)
            if prediction.is_photo:
                photos.append((result, image))
        lite0 = lite0[np.array([p.is_photo for p in predictions])]
        jobs = self.restorer.submit([image for _, image in photos])
        reading = [(result, self.reader.submit(image, result.resolution, result.subtype))
                   for result, image in zip(results, images, strict=True)
                   if self.reader.wants(result.is_photo)]  # fmt: skip
        return Batch(items, photos, jobs, reading, lite0)

    def finish_batch(self, batch: Batch) -> list[Result]:
        """Collect the batch's restored photos and caption them.

        A photo whose restoration timed out or failed keeps its classification and is
        captioned and written unrestored; its restoration note says why.
        """
        restored = self.restorer.collect(batch.jobs)
        for (result, image), outcome in zip(batch.photos, restored, strict=True):
            if isinstance(outcome, str):
                result.restored = image
                result.restore_notes = f"{outcome}: kept unrestored"
                continue
            result.restored, record = outcome
            result.set_restoration(record)
        if batch.photos:
            self.caption(batch.photos, batch.lite0)
        for result, job in batch.reading:
            result.set_reading(job.result())
        return [result for result, _ in batch.items]

    def caption(self, photos: list[tuple[Result, np.ndarray]], lite0: np.ndarray | None) -> None:
        """Caption the restored photos (unchanged ones are their own restoration); `photos`
        pairs each result with the photo as it came in. `lite0`: the classifier's Lite0 grids of
        the photos as they came in, for a grounding whose detectors read them
        (`Captioner.needs_lite0`): the shipped person detector does."""
        start = time.perf_counter()
        to_caption = [result for result, _ in photos]
        restored = [result.restored for result in to_caption]
        grids = self.captioner.grids(restored)
        detections, best = self.detect(restored)
        as_they_came = [image for _, image in photos]
        grain = self.captioner.grain_of(as_they_came) if self.captioner.needs_grain else None
        captions = self.captioner.describe(
            grids, self.config.beam, lite0=lite0, grain=grain, objects=best, detections=detections
        )
        per_image = (time.perf_counter() - start) / len(to_caption)
        for result, caption in zip(to_caption, captions, strict=True):
            found = caption.objects  # the detections the grounding agrees with (None: off)
            result.caption, result.caption_score = caption.text, round(caption.score, 4)
            result.caption_source = "evidence" if caption.from_evidence else "decoder"
            result.tags = format_tags(caption.tags)
            if found is not None:
                result.objects = json.dumps([item.to_json() for item in found])
                result.object_counts = count_tags(found)
            result.seconds_caption = round(per_image, 4)

    def detect(self, photos: list[np.ndarray]) -> tuple[list | None, np.ndarray | None]:
        """The photos' COCO objects, unless the settings turn the detector off (`objects`)."""
        return self.captioner.detect(photos) if self.config.objects else (None, None)

    # --- one image, for the API and the service --------------------------------------------------

    def analyze(self, source: str | Path | np.ndarray, name: str | None = None) -> Result:
        """The manifest fields of one image (a file or a uint8 array); `restored` for photos.

        A bad file gives status "error" with the reason, never an exception. Of a PDF or a
        multi-page TIFF, this is the first page: `analyze_file` gives every page.
        """
        if isinstance(source, np.ndarray):
            image = _as_rgb8(source)
            result = Result(name or "<array>", hashlib.sha256(image.tobytes()).hexdigest())
            return self.analyze_loaded([(result, image)])[0]
        return self.analyze_file(source, name)[0]

    def analyze_file(self, source: str | Path, name: str | None = None) -> list[Result]:
        """One Result per page of a file (one for an ordinary image), named as in a manifest."""
        return self.analyze_loaded(self.load_file(source, name))

    def load_file(self, source: str | Path, name: str | None = None) -> list[tuple[Result, Loaded]]:
        """Each page of a file decoded (or its error), with its empty Result, ready for
        `analyze_loaded`: the service decodes in the request's thread, then batches."""
        path = Path(source)
        # A missing file is one page whose loading says so (list_pages would raise).
        listed = path.exists() or path.is_symlink()
        pages = list_pages([path], self.config.pdf_dpi) if listed else [as_page(path)]
        label, sha256 = name or path.name, sha256_or_empty(path)
        items: list[tuple[Result, Loaded]] = [
            (
                Result(label + page.name.removeprefix(path.name), sha256, page=page),
                load_or_error(page, self.config.max_pixels),
            )
            for page in pages
        ]
        return items


def _as_rgb8(image: np.ndarray) -> np.ndarray:
    """A grey or RGB uint8 array as (H, W, 3) uint8; anything else is a caller's error."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        shape = f"{image.dtype} {image.shape}"
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) array, not {shape}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] != 3:
        raise ValueError(f"expected 3 channels, got {image.shape[2]}")
    return np.ascontiguousarray(image)


def sha256_or_empty(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""  # the decoder reports why the file cannot be read


def run_provenance(config: RunConfig, model_dirs: dict[str, Path], threshold: float) -> Provenance:
    """What a run's rows depend on: version, effective settings (the threshold actually used)
    and the models' content hashes."""
    settings = config.settings() | {"threshold": threshold}
    models = {name: folder_sha256(folder) for name, folder in model_dirs.items()}
    return Provenance(__version__, settings, models)


def model_folders(models: Path | None = None) -> dict[str, Path]:
    """The classifier's and the captioner's folders: under `models`, else the shipped ones."""
    if models:
        return {"classifier": models / "classifier", "captioner": models / "captioner"}
    return {"classifier": models_dir() / "classifier", "captioner": models_dir() / "captioner"}


def decode_page(page: Page, max_pixels: int) -> tuple[Loaded, float]:
    start = time.perf_counter()
    image = load_or_error(page, max_pixels)
    return image, time.perf_counter() - start
