"""`scancap serve`: the pipeline over HTTP (FastAPI), with the same settings as `scancap run`."""

from __future__ import annotations

import argparse
from pathlib import Path

from scancap.cli.options import add_max_pixels, add_model_options, positive_float, positive_int
from scancap.config import load_config


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from scancap.service import create_app

    config = load_config(args.config, max_pixels=args.max_pixels)
    app = create_app(
        config=config,
        models=args.models,
        max_upload_mb=args.max_upload_mb,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        corrections=args.corrections,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the pipeline over HTTP (FastAPI)",
        description="POST /v1/analyze (multipart image) returns the manifest fields as JSON; "
        "POST /v1/corrections takes a person's labels (path, label) for `scancap adapt`; "
        "GET /healthz, GET /version; OpenAPI docs at /docs. Models load once at start-up.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000)")
    serve.add_argument(
        "--max-upload-mb", type=positive_float, default=50.0,
        help="largest accepted upload in MB (50)",
    )  # fmt: skip
    serve.add_argument(
        "--max-batch", type=positive_int, default=16,
        help="concurrent requests' pages classified and captioned together, at most (16)",
    )  # fmt: skip
    serve.add_argument(
        "--max-wait-ms", type=positive_float, default=20.0,
        help="how long the first waiting request waits for others to batch with (20 ms)",
    )  # fmt: skip
    serve.add_argument(
        "--corrections", type=Path, default=Path("corrections.csv"),
        help="where POST /v1/corrections appends labels, for scancap adapt (corrections.csv)",
    )  # fmt: skip
    add_model_options(serve)
    add_max_pixels(serve, default=None)
    serve.set_defaults(handler=cmd_serve)
