"""`scancap caption`: one sentence per photo, printed or as a CSV."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from scancap.batch import report_error
from scancap.caption.files import CSV_COLUMNS, caption_files, caption_summary
from scancap.cli.options import (
    add_batch_options,
    add_batch_size,
    add_inputs,
    add_models_option,
    model_folder,
    positive_int,
)
from scancap.io import atomic_write_text
from scancap.pages import list_pages


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


def cmd_caption(args: argparse.Namespace) -> int:
    """Caption every image found under the inputs: CSV with --out, else path<TAB>caption."""
    files = list_pages(args.inputs, args.pdf_dpi)
    rows = []
    # The captioning stage knows nothing of the classifier; the command line joins them.
    check = None if args.all else classifier_photo_check(args.models)
    captioner = model_folder(args, "captioner")
    results = caption_files(files, captioner, args.beam, args.batch_size, args.max_pixels, check)
    for path, row in tqdm(
        results, total=len(files), desc="caption", unit="img", disable=args.quiet
    ):
        if row["error"]:
            report_error(path, row["error"])
        elif row["skipped"]:
            tqdm.write(f"{path}: skipped, {row['skipped']} (--all captions it)", file=sys.stderr)
        elif not args.out:
            tqdm.write(f"{row['path']}\t{row['caption']}", file=sys.stdout)
        rows.append(row)
    failures = sum(bool(row["error"]) for row in rows)
    if args.out:
        atomic_write_text(
            Path(args.out), pd.DataFrame(rows, columns=CSV_COLUMNS).to_csv(index=False)
        )
    if not args.quiet:
        print(caption_summary(rows, args.out), file=sys.stderr)
    return 1 if failures else 0


def add_beam_option(parser: argparse.ArgumentParser) -> None:
    """--beam of the commands that run the captioner alone (caption, evaluate)."""
    parser.add_argument(
        "--beam", type=positive_int, default=3, help="beam width (default 3; 1 is greedy decoding)"
    )


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "caption",
        help="describe photos in one sentence",
        description="Caption photos (files or folders, searched recursively). Prints "
        "path<TAB>caption, or with --out writes a CSV: path, caption, skipped, error. Images "
        "the classifier does not call photos are skipped (their row says why) unless --all.",
    )
    parser.add_argument(
        "--all", action="store_true", help="caption every image, photo or not (default: photos)"
    )
    add_inputs(parser)
    parser.add_argument("--out", help="CSV file to write (default: print to stdout)")
    add_beam_option(parser)
    add_models_option(parser)
    add_batch_size(parser)
    add_batch_options(parser)
    parser.set_defaults(handler=cmd_caption)
