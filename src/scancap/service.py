"""The HTTP service: the pipeline behind FastAPI, models loaded once.

`POST /v1/analyze` takes one image or document (multipart) and answers the manifest fields as
JSON, with the restored photo as base64 PNG on request; a PDF or multi-page TIFF answers its
first page's fields and every page under `pages`; `GET /healthz` and `GET /version` are for
operations; `/docs` is the OpenAPI page. Bad input is a 4xx with a sentence saying what is
wrong (413 too large, 400 empty, 422 not a readable image), never a 500.

With an API key, the `/v1` operations answer only requests that carry it (`Authorization:
Bearer KEY`; 401 otherwise, compared in constant time). At most `max_queue` analyses are
accepted at once, waiting or running; one more is refused at once with 503 and a `Retry-After`
telling when the backlog should have cleared, so that latency stays bounded under any load.

Each request is decoded in its own thread; concurrent requests then share the neural stages'
batches (`MicroBatcher`), and restoration runs on the pipeline's worker threads.
"""

from __future__ import annotations

import base64
import csv
import hmac
import io
import json
import math
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import cv2
import fastapi_offline
import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, create_model

from scancap import __version__
from scancap.config import RunConfig
from scancap.io import INPUT_SUFFIXES, atomic_write_text
from scancap.pages import pages_named
from scancap.pipeline.compose import MANIFEST_COLUMNS, Pipeline, Result
from scancap.pipeline.microbatch import MicroBatcher

# Swagger UI 5 (it renders the OpenAPI 3.1 FastAPI publishes), shipped in fastapi-offline's
# package data so that /docs needs no CDN.
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_HINTS = get_type_hints(Result)
# Analyses the service holds at once (waiting or running) before it answers 503. An accepted
# request waits for at most this many photos: on 2 cores, 32 kept the accepted requests' p95
# under 5 s at 64 clients and under 6 s at 256 (reports/service.md).
DEFAULT_MAX_QUEUE = 32
DEFAULT_SECONDS_PER_PAGE = 0.1  # until the batcher has timed a batch
# The bearer token a request carries, if any (a module-level name: FastAPI resolves the
# annotations of a dependency from its module).
BearerToken = Annotated[
    HTTPAuthorizationCredentials | None,
    Depends(HTTPBearer(auto_error=False, description="the service's API key")),
]
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid API key (when the service has one)"},
    503: {"description": "busy: retry after the Retry-After header's seconds"},
}


class DetectedObject(BaseModel):
    """A COCO object in a photo: its box (x0, y0, x1, y1) as fractions of width and height."""

    label: str
    score: float
    box: list[float]


# The response schema is the manifest row, plus the optional restored image; a document's
# answer also lists every page. A field that does not apply (a non-photo's caption, an error
# row's p_photo) is null, never ""; only `path` is always set.
PageAnalysis = create_model(
    "PageAnalysis",
    **{
        f.name: (_HINTS[f.name], ...) if f.default is MISSING else (_HINTS[f.name] | None, None)
        for f in fields(Result)
        if f.name in MANIFEST_COLUMNS and f.name != "objects"
    },
    restored_png_base64=(str | None, None),
    objects=(list[DetectedObject] | None, None),  # the manifest's JSON text, as a list
)
Analysis = create_model("Analysis", __base__=PageAnalysis, pages=(list[PageAnalysis], []))
Label = Literal["photo", "painting", "schematic", "text", "sketch"]


class Correction(BaseModel):
    """A person's label for one page: where it is (as the manifest's `file` column and the
    review file name it; "file.pdf#page=N" for a page of a document) and what it is."""

    path: str
    label: Label


class Corrections(BaseModel):
    corrections: list[Correction]


def create_app(
    pipeline: Pipeline | None = None,
    config: RunConfig | None = None,
    models: Path | None = None,
    max_upload_mb: float = 50.0,
    max_batch: int = 16,
    max_wait_ms: float = 20.0,
    corrections: Path = Path("corrections.csv"),
    api_key: str | None = None,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> FastAPI:
    """The application; `pipeline` is loaded at start-up unless one is given (tests).

    Concurrent requests are batched: up to `max_batch` pages, gathered for at most
    `max_wait_ms` after the first; beyond `max_queue` analyses in the service, a request gets
    503. Corrections posted to `/v1/corrections` are appended to `corrections`, the file
    `scancap adapt` reads. With `api_key`, the `/v1` operations require it.
    """
    state: dict[str, Any] = {}
    corrections_lock = threading.Lock()
    max_bytes = int(max_upload_mb * 1e6)
    admission = Admission(max_queue)
    authorized = [Depends(key_check(api_key))] if api_key else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loaded = pipeline or Pipeline.load(config, models)
        warm_up(loaded)  # the first request is then as fast as the others
        state["batcher"] = MicroBatcher(loaded, max_batch, max_wait_ms / 1000)
        state["pipeline"] = loaded
        yield
        state.pop("pipeline")
        state.pop("batcher").close()
        if pipeline is None:  # a pipeline the caller gave stays the caller's to close
            loaded.close()

    app = FastAPI(
        title="scancap",
        version=__version__,
        description="Sort a scanned image (photo or not), restore photos and caption them.",
        lifespan=lifespan,
        docs_url=None,  # served below from the installed swagger-ui assets: no CDN
    )
    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The OpenAPI page, working offline."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="scancap API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.exception_handler(RequestValidationError)
    def one_sentence(request: Request, error: RequestValidationError) -> JSONResponse:
        """A malformed request gets a sentence, like every other 4xx."""
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'request'}: {e['msg'].lower()}"
            for e in error.errors()
        )
        return JSONResponse({"detail": f"bad request: {problems}"}, status_code=422)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Ready when the models are loaded; how many pages went through in how many batches."""
        batcher = state.get("batcher")
        if batcher is None:
            return {"status": "loading"}
        return {"status": "ok", "pages": batcher.pages, "batches": batcher.batches}

    @app.get("/version")
    def version() -> dict[str, Any]:
        """Package version and the decision settings in force."""
        loaded = state.get("pipeline")
        settings = {}
        if loaded is not None:
            settings = {
                "threshold": loaded.classifier.calibration.threshold,
                "restore_mode": loaded.config.restore_mode,
                "beam": loaded.config.beam,
                "max_batch": max_batch,
                "max_wait_ms": max_wait_ms,
                "max_queue": max_queue,
            }
        return {"scancap": __version__, **settings}

    @app.middleware("http")
    async def shed_load(request: Request, call_next: Any) -> Response:
        """Past `max_queue` analyses in the service, refuse at once instead of queueing."""
        if request.url.path != "/v1/analyze" or request.method != "POST":
            return await call_next(request)
        if not admission.enter():
            batcher = state.get("batcher")
            seconds = admission.retry_after(batcher.seconds_per_page if batcher else None)
            detail = f"the service is busy ({max_queue} analyses in progress): retry later"
            return JSONResponse({"detail": detail}, 503, {"Retry-After": str(seconds)})
        try:
            return await call_next(request)
        finally:
            admission.leave()

    @app.post("/v1/analyze", response_model=Analysis, dependencies=authorized,
              responses=REFUSALS)  # fmt: skip
    def analyze(
        request: Request,
        file: Annotated[
            UploadFile,
            File(description="an image (JPEG, PNG, TIFF, BMP, WebP, GIF, JPEG 2000, AVIF) or PDF"),
        ],
        include_image: Annotated[bool, Query(description="add the restored photo (PNG)")] = False,
    ) -> dict[str, Any]:
        """Classify one image (each page of a document); restore and caption the photos."""
        name = Path(file.filename or "upload").name
        declared = int(request.headers.get("content-length") or 0)
        data = file.file.read(max_bytes + 1)
        if declared > max_bytes + 1_000_000 or len(data) > max_bytes:
            raise HTTPException(413, f"{name}: upload larger than {max_upload_mb:g} MB")
        if not data:
            raise HTTPException(400, f"{name}: empty upload")
        results = _analyze_bytes(state["pipeline"], state["batcher"], data, name)
        if all(result.status != "ok" for result in results):
            raise HTTPException(422, f"{name}: {results[0].error}")
        pages = [_answer(result, include_image) for result in results]
        return pages[0] | {"pages": pages if len(pages) > 1 else []}

    @app.post("/v1/corrections", dependencies=authorized, responses=REFUSALS)
    def correct(body: Corrections) -> dict[str, Any]:
        """Labels a person gives pages (photo, painting, schematic, text or sketch), appended
        to the corrections file that `scancap adapt` learns from."""
        for number, row in enumerate(body.corrections, start=1):
            try:
                pages_named(row.path, Path("/"))
            except ValueError as error:
                raise HTTPException(422, f"correction {number}: {error}") from None
        with corrections_lock:
            total = append_corrections(corrections, [(c.path, c.label) for c in body.corrections])
        return {"accepted": len(body.corrections), "total": total, "file": str(corrections)}

    return app


class Admission:
    """How many analyses are in the service (waiting for a thread, decoding, in a batch), and
    whether one more may enter."""

    def __init__(self, limit: int) -> None:
        self.limit, self.inside = limit, 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.inside >= self.limit:
                return False
            self.inside += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1

    def retry_after(self, seconds_per_page: float | None) -> int:
        """Whole seconds until the analyses inside now should be done (at least 1)."""
        return max(1, math.ceil(self.inside * (seconds_per_page or DEFAULT_SECONDS_PER_PAGE)))


def key_check(api_key: str) -> Any:
    """A dependency refusing requests without `api_key` as their bearer token (401)."""
    expected = api_key.encode()

    def check(credentials: BearerToken) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):  # constant time: no timing oracle
            raise HTTPException(401, "an API key is required: send 'Authorization: Bearer KEY'",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip

    return check


def append_corrections(target: Path, rows: list[tuple[str, str]]) -> int:
    """`rows` added to the corrections CSV (written whole, atomically); how many it holds."""
    lines = target.read_text().splitlines()[1:] if target.exists() else []
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    lines += buffer.getvalue().splitlines()
    atomic_write_text(target, "\n".join(["path,label", *lines]) + "\n")
    return len(lines)


def _analyze_bytes(
    pipeline: Pipeline, batcher: MicroBatcher, data: bytes, name: str
) -> list[Result]:
    """The decoder reads files: the upload goes to a private temporary one, kept until the
    answer is ready (its header still tells the metadata notes and the dpi OCR reads at);
    the decoded pages join the next batch."""
    suffix = Path(name).suffix.lower()
    suffix = suffix if suffix in INPUT_SUFFIXES else ""
    with tempfile.TemporaryDirectory(prefix="scancap-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        return batcher.analyze(pipeline.load_file(path, name=name))


def warm_up(pipeline: Pipeline) -> None:
    """One photo through every stage, so the graphs are built before the first request."""
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 40, (96, 128, 3)), 0, 255).astype(np.uint8)
    pipeline.analyze_loaded([(Result("warm-up"), photo)])
    lite0 = None
    if pipeline.captioner.needs_lite0:  # whatever the photo was sorted as
        _, lite0 = pipeline.classifier.predict_with_features([photo])
    pipeline.caption([(Result("warm-up", restored=photo), photo)], lite0)


def _answer(result: Result, include_image: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {k: None if v == "" else v for k, v in result.row().items()}
    if answer["objects"] is not None:
        answer["objects"] = json.loads(answer["objects"])
    if include_image and result.restored is not None:
        answer["restored_png_base64"] = _png_base64(result.restored)
    return answer


def _png_base64(image: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the restored image")
    return base64.b64encode(encoded.tobytes()).decode("ascii")
