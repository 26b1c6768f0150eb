"""`scancap serve`: the pipeline over HTTP (FastAPI), with the same settings as `scancap run`."""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from scancap.cli.options import (
    UsageError,
    add_max_pixels,
    add_model_options,
    positive_float,
    positive_int,
)
from scancap.config import load_config

API_KEY_VARIABLE = "SCANCAP_API_KEY"
MIN_KEY_LENGTH = 16


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from scancap.service import DEFAULT_MAX_QUEUE, create_app

    api_key = required_api_key(args.host, args.api_key_file, args.no_auth)
    config = load_config(args.config, max_pixels=args.max_pixels)
    app = create_app(
        config=config,
        models=args.models,
        max_upload_mb=args.max_upload_mb,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        corrections=args.corrections,
        api_key=api_key,
        max_queue=args.max_queue or DEFAULT_MAX_QUEUE,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def required_api_key(host: str, key_file: Path | None, no_auth: bool) -> str | None:
    """The API key requests must carry: from --api-key-file or $SCANCAP_API_KEY; required to
    listen beyond loopback unless --no-auth says so explicitly."""
    key = read_key(key_file) if key_file else os.environ.get(API_KEY_VARIABLE, "").strip()
    if key and len(key) < MIN_KEY_LENGTH:
        raise UsageError(
            f"the API key is too short to be secret: use {MIN_KEY_LENGTH} characters "
            "or more (for example: python3 -c 'import secrets; print(secrets.token_urlsafe())')"
        )
    if no_auth:
        return None
    if not key and not is_loopback(host):
        raise UsageError(
            f"serving on {host} lets anyone who reaches the port use it: set {API_KEY_VARIABLE} "
            "or --api-key-file FILE (clients send 'Authorization: Bearer KEY'), "
            "or say --no-auth"
        )
    return key or None


def read_key(path: Path) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise UsageError(f"--api-key-file {path}: {error.strerror or error}") from None
    if not lines or not lines[0].strip():
        raise UsageError(f"--api-key-file {path}: the file is empty")
    return lines[0].strip()


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
        "--api-key-file", type=Path,
        help=f"file whose first line is the key requests must carry (else ${API_KEY_VARIABLE}); "
        "required to listen beyond 127.0.0.1",
    )  # fmt: skip
    serve.add_argument(
        "--no-auth", action="store_true",
        help="listen beyond 127.0.0.1 with no API key (anyone who reaches the port may use it)",
    )  # fmt: skip
    serve.add_argument(
        "--max-queue", type=positive_int,
        help="analyses held at once, waiting or running; one more gets 503 with Retry-After (32)",
    )  # fmt: skip
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
