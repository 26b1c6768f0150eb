"""The `scancap` command line: one module per command, each building its subcommand from
the stages' public functions (the stages themselves know nothing of argparse)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from scancap import __version__
from scancap.cli import adapt, caption, classify, evaluate, restore, review, run, serve, train
from scancap.cli.options import UsageError
from scancap.config import ConfigError

# `scancap --help` lists the subcommands in the order of a day's work, then the model work.
COMMANDS = {
    "run": run,
    "classify": classify,
    "restore": restore,
    "caption": caption,
    "review": review,
    "adapt": adapt,
    "serve": serve,
    "train": train,
    "evaluate": evaluate,
}
WORKFLOW_ORDER = tuple(COMMANDS)
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
    for command in COMMANDS.values():
        command.add_parser(subparsers)
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
