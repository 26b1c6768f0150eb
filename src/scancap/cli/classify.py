"""`scancap classify`: photo or not, and the subtype of non-photos, as a CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from scancap.classify.files import classify_files
from scancap.cli.options import (
    add_batch_options,
    add_batch_size,
    add_inputs,
    add_models_option,
    model_folder,
    probability,
)
from scancap.io import atomic_write_text
from scancap.pages import list_pages


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify every image found under the inputs; write the CSV even if some files failed."""
    files = list_pages(args.inputs, args.pdf_dpi)
    table, failures = classify_files(
        files,
        args.threshold,
        model_folder(args, "classifier"),
        args.batch_size,
        args.max_pixels,
        args.quiet,
    )
    atomic_write_text(Path(args.out), table.to_csv(index=False))
    if not args.quiet:
        photos = int((table["is_photo"] == "true").sum())
        print(f"{photos} photos among {len(files) - failures}/{len(files)} images -> {args.out}")
    return 1 if failures else 0


def add_threshold_option(parser: argparse.ArgumentParser) -> None:
    """--threshold of the commands that run the classifier alone (classify, evaluate)."""
    parser.add_argument(
        "--threshold",
        type=probability,
        help="p(photo) at or above which an image is a photo (default: the calibrated one "
        "in the model's calibration.json)",
    )


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "classify",
        help="photo or not, and the subtype of non-photos",
        description="Classify images as photo or not (painting, schematic, text, sketch). "
        "Writes one CSV row per file: path, is_photo, p_photo, subtype, error, and file (where "
        "the page is, as `scancap review` and `scancap adapt` read it).",
    )
    add_inputs(parser)
    parser.add_argument("--out", required=True, help="CSV file to write")
    add_threshold_option(parser)
    add_models_option(parser)
    add_batch_size(parser)
    add_batch_options(parser)
    parser.set_defaults(handler=cmd_classify)
