"""`scancap run` (the product's daily command) and `scancap serve` (the HTTP service)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from scancap.cli_args import (
    add_batch_options,
    add_inputs,
    add_max_pixels,
    positive_int,
    probability,
)
from scancap.config import RunConfig, load_config
from scancap.restore import MODES

DEFAULTS = RunConfig()


def _config(args: argparse.Namespace) -> RunConfig:
    """Defaults, then --config's [run] table, then the flags that were given."""
    # Every RunConfig field has a flag of the same name; None means "not given".
    flags = {f.name: getattr(args, f.name) for f in fields(RunConfig)}
    return load_config(args.config, **flags)


def cmd_run(args: argparse.Namespace) -> int:
    from scancap.pipeline import Pipeline, run

    try:
        config = _config(args)
    except (ValueError, OSError) as error:
        print(f"error: configuration: {error}", file=sys.stderr)
        return 2
    with Pipeline.load(config, args.models) as pipeline:
        try:
            summary = run(pipeline, args.inputs, Path(args.out), args.force, not args.quiet)
        except KeyboardInterrupt:
            print(
                "\ninterrupted: finished images are kept in the ledger; run the same command "
                "again to resume",
                file=sys.stderr,
            )
            return 130
    if not args.quiet:
        print(summary.text())
    return 1 if summary.errors else 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from scancap.service import create_app

    config = load_config(args.config, max_pixels=args.max_pixels)
    app = create_app(config=config, models=args.models, max_upload_mb=args.max_upload_mb)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML file with a [run] table (flags override it)"
    )
    parser.add_argument(
        "--models", type=Path, help="folder holding classifier/ and captioner/ (default: models/)"
    )


def register_cli(
    commands: argparse._SubParsersAction,
    train_targets: argparse._SubParsersAction,
    evaluate_targets: argparse._SubParsersAction,
) -> None:
    run = commands.add_parser(
        "run",
        help="sort, restore and caption a folder of scans (the main command)",
        description="For each image: classify; photos are restored and captioned, others are "
        "sorted by subtype and left as they are. OUT receives manifest.parquet/.csv, "
        "photos/<path>, captions.jsonl and report.html. A rerun skips finished images "
        "(--force redoes them); one bad file never stops the batch. Settings: defaults, then "
        "--config, then flags.",
    )
    add_inputs(run)
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument(
        "--threshold",
        type=probability,
        help="p(photo) from which an image is a photo (default: the model card's)",
    )
    run.add_argument(
        "--restore-mode",
        choices=list(MODES),
        help=f"how photos are restored (default {DEFAULTS.restore_mode}; auto is better and "
        "about 10x slower)",
    )
    run.add_argument(
        "--restore-strength",
        type=float,
        help=f"scales the denoising σ, in (0, 4] (default {DEFAULTS.restore_strength})",
    )
    run.add_argument(
        "--beam", type=positive_int, help=f"caption beam size (default {DEFAULTS.beam})"
    )
    run.add_argument(
        "--workers",
        type=positive_int,
        help=f"decoding threads and restoration processes (default {DEFAULTS.workers})",
    )
    run.add_argument(
        "--batch-size", type=positive_int, help=f"images per batch (default {DEFAULTS.batch_size})"
    )
    run.add_argument(
        "--copy-non-photos",
        action=argparse.BooleanOptionalAction,
        help="also copy non-photos, unmodified, to sorted/<subtype>/ (default off)",
    )
    run.add_argument(
        "--caption-txt",
        action=argparse.BooleanOptionalAction,
        help="write a .txt caption beside each restored photo (default off)",
    )
    run.add_argument(
        "--time-limit",
        type=float,
        help=f"seconds one image may spend in restoration (default {DEFAULTS.time_limit:g})",
    )
    run.add_argument("--force", action="store_true", help="reprocess images already finished")
    add_batch_options(run, default=None)  # None: from --config, else the default
    _add_run_options(run)
    run.set_defaults(handler=cmd_run)

    serve = commands.add_parser(
        "serve",
        help="serve the pipeline over HTTP (FastAPI)",
        description="POST /v1/analyze (multipart image) returns the manifest fields as JSON; "
        "GET /healthz, GET /version; OpenAPI docs at /docs. Models load once at start-up.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (8000)")
    serve.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest accepted upload in MB (50)"
    )
    _add_run_options(serve)
    add_max_pixels(serve, default=None)
    serve.set_defaults(handler=cmd_serve)
