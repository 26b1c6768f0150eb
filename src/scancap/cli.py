"""The `scancap` command line: one subcommand per stage of the product."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from scancap import __version__, caption_cli, classify_cli, pipeline_cli
from scancap.batch import error_reason, report_error
from scancap.cli_args import add_batch_options, add_inputs
from scancap.io import (
    ImageLoadError,
    atomic_write_text,
    iter_image_files,
    load_image,
    output_path,
    save_image,
)
from scancap.restore import MODES, restore_image


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore every image found under the inputs into --out."""
    files = iter_image_files(args.inputs)
    out_dir = Path(args.out)
    inputs = {path for path, _ in files}
    rows, failures = [], 0
    for path, relative in tqdm(files, desc="restore", unit="img", disable=args.quiet):
        row: dict[str, object] = {"path": str(relative), "output": "", "error": ""}
        try:
            image = load_image(path, max_pixels=args.max_pixels)
            restored, record = restore_image(image, args.mode)
            target = output_path(out_dir, relative)
            save_image(target, restored, inputs=inputs)
            row |= {"output": str(target.relative_to(out_dir))} | record.flat()
        except (ImageLoadError, OSError, ValueError) as error:
            failures += 1
            row["error"] = error_reason(error)
            report_error(path, row["error"])
        rows.append(row)
    if args.csv:
        atomic_write_text(Path(args.csv), pd.DataFrame(rows).to_csv(index=False))
    if not args.quiet:
        print(f"restored {len(files) - failures}/{len(files)} images into {out_dir}")
    return 1 if failures else 0


def add_restore_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="denoise and sharpen images",
        description="Denoise and sharpen images. Outputs keep their relative paths and "
        "format (GIF becomes PNG); inputs are never modified.",
    )
    add_inputs(parser)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--mode",
        default="auto",
        choices=list(MODES),
        help="auto measures noise and blur and decides; auto-fast is the fast path; "
        "the others apply one filter with a strength set from the measured noise",
    )
    parser.add_argument("--csv", help="write measurements and decisions to this CSV file")
    add_batch_options(parser)
    parser.set_defaults(handler=cmd_restore)


# Each stage registers its subcommands: (commands, train targets, evaluate targets).
STAGE_PARSERS: list[Callable[..., None]] = [
    pipeline_cli.register_cli,
    classify_cli.register_cli,
    caption_cli.register_cli,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scancap",
        description="Sort scanned images into photos and others, restore the photos and "
        "caption them.",
    )
    parser.add_argument("--version", action="version", version=f"scancap {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_restore_parser(subparsers)
    train = subparsers.add_parser("train", help="train a model from the datasets")
    train_targets = train.add_subparsers(dest="target", required=True)
    evaluate = subparsers.add_parser("evaluate", help="evaluate a model and rewrite its report")
    evaluate_targets = evaluate.add_subparsers(dest="target", required=True)
    for register in STAGE_PARSERS:
        register(subparsers, train_targets, evaluate_targets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
