"""`scancap restore`: denoise and sharpen images, with a CSV of what was measured and decided."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scancap.cli.options import (
    add_batch_options,
    add_inputs,
    positive_float,
    positive_int,
    restore_strength,
)
from scancap.io import atomic_write_text
from scancap.pages import require_pages
from scancap.restore.auto import MODES
from scancap.restore.files import restore_files


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore every image (every page) found under the inputs into --out."""
    pages = require_pages(args.inputs, args.pdf_dpi)
    out_dir = Path(args.out)
    rows = restore_files(
        pages, out_dir, args.mode, args.strength, args.workers, args.time_limit,
        args.max_pixels, args.quiet,
    )  # fmt: skip
    if args.csv:
        atomic_write_text(Path(args.csv), pd.DataFrame(rows).round(4).to_csv(index=False))
    failures = sum(bool(row["error"]) for row in rows)
    if not args.quiet:
        print(f"restored {len(pages) - failures}/{len(pages)} images into {out_dir}")
    return 1 if failures else 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    """`scancap restore`; restoration has no model to train, and its benchmark is a script."""
    parser = commands.add_parser(
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
    parser.add_argument(
        "--strength",
        type=restore_strength,
        default=1.0,
        help="scales the denoising σ, in (0, 4]: below 1 keeps more grain (default 1)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=2, help="restoration threads (default 2)"
    )
    parser.add_argument(
        "--time-limit",
        type=positive_float,
        default=60.0,
        help="seconds one image may take before it is reported as an error (default 60)",
    )
    parser.add_argument("--csv", help="write measurements and decisions to this CSV file")
    add_batch_options(parser)
    parser.set_defaults(handler=cmd_restore)
