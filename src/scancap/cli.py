"""The `scancap` command line: one subcommand per stage of the product."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from scancap import __version__
from scancap.caption import cli as caption_cli
from scancap.classify import cli as classify_cli
from scancap.cli_args import UsageError, add_max_pixels, positive_float, positive_int
from scancap.config import ConfigError, load_config
from scancap.pipeline import cli as pipeline_cli
from scancap.pipeline.cli import add_model_options
from scancap.restore import cli as restore_cli


def classifier_photo_check(models: Path | None = None) -> Callable[[list], list[str]]:
    """`scancap caption`'s default filter: the classifier (of --models) turns down non-photos."""
    from scancap.classify.model import Classifier

    classifier = Classifier.load(models / "classifier" if models else None)

    def check(images: list) -> list[str]:
        return [
            "" if p.is_photo else f"not a photo: {p.subtype}, p(photo) = {p.p_photo:.2f}"
            for p in classifier.predict(images)
        ]

    return check


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
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def add_serve_parser(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve the pipeline over HTTP (FastAPI)",
        description="POST /v1/analyze (multipart image) returns the manifest fields as JSON; "
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
    add_model_options(serve)
    add_max_pixels(serve, default=None)
    serve.set_defaults(handler=cmd_serve)


# Each stage registers its subcommands: (commands, train targets, evaluate targets).
STAGE_PARSERS: list[Callable[..., None]] = [
    restore_cli.register_cli,
    pipeline_cli.register_cli,
    classify_cli.register_cli,
    caption_cli.register_cli,
]


# `scancap --help` lists the subcommands in the order of a day's work, then the model work.
WORKFLOW_ORDER = ("run", "classify", "restore", "caption", "serve", "train", "evaluate")
EPILOG = """\
inputs: JPEG, PNG, TIFF, BMP, WebP, GIF, JPEG 2000, AVIF and PDF files, or folders (searched
  recursively; HEIC and camera-raw files found there get an error row saying so).
  Every page of a PDF (rendered at 300 dpi) and of a multi-page TIFF is one item, named
  file.pdf#page=N in every output.

exit status:
  0    every input was processed
  1    some inputs failed: each has an error row and a line on stderr; the rest went on
  2    bad command line or configuration, or no input found: nothing was processed
  3    training stopped at its --max-minutes budget: the same command resumes
  130  interrupted (Ctrl-C): `scancap run` resumes where it stopped
"""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (and exit status 2), not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="scancap",
        description="Sort scanned images into photos and others, restore the photos and "
        "caption them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scancap {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = subparsers.add_parser("train", help="train a model from the datasets")
    train_targets = train.add_subparsers(dest="target", required=True)
    evaluate = subparsers.add_parser("evaluate", help="evaluate a model and rewrite its report")
    evaluate_targets = evaluate.add_subparsers(dest="target", required=True)
    for register in STAGE_PARSERS:
        register(subparsers, train_targets, evaluate_targets)
    add_serve_parser(subparsers)
    # The captioning stage knows nothing of the classifier; the command line joins them.
    subparsers.choices["caption"].set_defaults(photo_check=classifier_photo_check)
    # argparse lists subcommands in the order they were added, and the stages add theirs
    # with their train and evaluate targets; put the listing in workflow order.
    subparsers._choices_actions.sort(key=lambda action: WORKFLOW_ORDER.index(action.dest))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"error: configuration: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, UsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
