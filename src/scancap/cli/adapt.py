"""`scancap adapt`: a model folder adapted to an archive from a person's corrections."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scancap.cli.options import add_max_pixels, add_quiet


def cmd_adapt(args: argparse.Namespace) -> int:
    """A model folder adapted to the corrections, every other model copied from the base."""
    from scancap.classify.corrections import adapt_models

    try:
        record = adapt_models(args.corrections, args.out, args.models, args.max_pixels)
    except ValueError as error:  # a bad corrections file (TableError), or --out the base
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name, reason in record.unreadable:
        print(f"{name}: {reason} (correction left out)", file=sys.stderr)
    if not args.quiet:
        counts = ", ".join(f"{label} {n}" for label, n in sorted(record.counts.items()))
        print(f"adapted to {sum(record.counts.values())} corrections ({counts}) -> {args.out} "
              f"(use it with --models {args.out})")  # fmt: skip
    return 1 if record.unreadable else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    adapt = commands.add_parser(
        "adapt",
        help="adapt the classifier to an archive from a person's corrections",
        description="Learn the labelled rows of review or corrections files (CSV: path, "
        "label) and write a complete model folder (classifier adapted, captioner copied) that "
        "every command takes with --models DIR. The base models are never modified.",
    )
    adapt.add_argument("corrections", nargs="+", type=Path, help="corrections CSV files")
    adapt.add_argument("--out", type=Path, required=True, help="adapted model folder to write")
    adapt.add_argument(
        "--models", type=Path, help="model folder to adapt (default: the shipped models)"
    )
    add_max_pixels(adapt)
    add_quiet(adapt)
    adapt.set_defaults(handler=cmd_adapt)
