"""`scancap review`: the items of a run most worth a person's look, as a file to fill in."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scancap.cli.options import add_max_pixels, add_models_option, add_quiet, positive_int
from scancap.io import atomic_write_text


def cmd_review(args: argparse.Namespace) -> int:
    """The --limit items most worth a look, most useful first, with an empty label column."""
    from scancap.classify.model import Classifier
    from scancap.classify.review import ReviewError, read_items, review_queue

    try:
        pages = read_items(args.source)
    except ReviewError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    classifier = Classifier.load(args.models / "classifier" if args.models else None)
    queue = review_queue(
        classifier, pages, args.limit, max_pixels=args.max_pixels, quiet=args.quiet
    )
    atomic_write_text(args.out, queue.to_csv(index=False))
    if not args.quiet:
        print(
            f"{len(queue)} of {len(pages)} items to review -> {args.out} (fill the label "
            "column: photo, painting, schematic, text or sketch; then scancap adapt)"
        )
    return 0 if len(queue) == min(args.limit, len(pages)) else 1


def add_parser(commands: argparse._SubParsersAction) -> None:
    review = commands.add_parser(
        "review",
        help="list the items most worth a person's look",
        description="Read a run's OUT folder (its manifest) or a `scancap classify` CSV and "
        "write the items a person should check first: the least certain decisions first. "
        "Columns: path (where the page is), p_photo, predicted, and an empty label to fill "
        "with photo, painting, schematic, text or sketch; then `scancap adapt` learns from it.",
    )
    review.add_argument("source", type=Path, help="a run's OUT folder or a classify CSV")
    review.add_argument("--limit", type=positive_int, default=20, help="items to list (20)")
    review.add_argument("--out", type=Path, required=True, help="review CSV to write")
    add_models_option(review)
    add_max_pixels(review)
    add_quiet(review)
    review.set_defaults(handler=cmd_review)
