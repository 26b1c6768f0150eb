"""`scancap restore`: denoise and sharpen images, with a CSV of what was measured and decided."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from scancap.batch import error_reason, report_error
from scancap.cli_args import add_batch_options, add_inputs
from scancap.io import (
    ImageLoadError,
    atomic_write_text,
    output_path,
    save_image,
)
from scancap.pages import list_pages, load_page
from scancap.restore.auto import MODES, restore_image


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore every image found under the inputs into --out."""
    files = list_pages(args.inputs)
    out_dir = Path(args.out)
    inputs = {page.file for page in files}
    rows, failures = [], 0
    for page in tqdm(files, desc="restore", unit="img", disable=args.quiet):
        row: dict[str, object] = {"path": page.name, "output": "", "error": ""}
        try:
            image = load_page(page, max_pixels=args.max_pixels)
            restored, record = restore_image(image, args.mode)
            target = output_path(out_dir, page.output_name())
            save_image(target, restored, inputs=inputs)
            row |= {"output": str(target.relative_to(out_dir))} | record.flat()
        except (ImageLoadError, OSError, ValueError) as error:
            failures += 1
            row["error"] = error_reason(error)
            report_error(page, row["error"])
        rows.append(row)
    if args.csv:
        atomic_write_text(Path(args.csv), pd.DataFrame(rows).to_csv(index=False))
    if not args.quiet:
        print(f"restored {len(files) - failures}/{len(files)} images into {out_dir}")
    return 1 if failures else 0


def register_cli(
    commands: argparse._SubParsersAction,
    train_targets: argparse._SubParsersAction,
    evaluate_targets: argparse._SubParsersAction,
) -> None:
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
    parser.add_argument("--csv", help="write measurements and decisions to this CSV file")
    add_batch_options(parser)
    parser.set_defaults(handler=cmd_restore)
