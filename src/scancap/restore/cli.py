"""`scancap restore`: denoise and sharpen images, with a CSV of what was measured and decided."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from scancap.batch import error_reason, load_batches, report_error
from scancap.cli_args import (
    add_batch_options,
    add_inputs,
    positive_float,
    positive_int,
    restore_strength,
)
from scancap.config import DEFAULT_PIXEL_BUDGET
from scancap.io import (
    ImageLoadError,
    atomic_write_text,
    output_path,
    save_image,
)
from scancap.pages import Page, page_metadata, require_pages
from scancap.restore.auto import MODES, RestoreRecord
from scancap.restore.workers import RestoreWorkers


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore every image (every page) found under the inputs into --out."""
    pages = require_pages(args.inputs, args.pdf_dpi)
    out_dir = Path(args.out)
    inputs = {page.file for page in pages}
    restorer = RestoreWorkers(
        args.mode, args.strength, args.workers, args.time_limit, DEFAULT_PIXEL_BUDGET
    )
    rows = []
    try:
        with tqdm(total=len(pages), desc="restore", unit="img", disable=args.quiet) as bar:
            batches = load_batches(
                pages,
                2 * args.workers,
                args.max_pixels,
                args.workers,
                pixel_budget=DEFAULT_PIXEL_BUDGET,
            )
            for batch in batches:
                images = [item for _, item in batch if isinstance(item, np.ndarray)]
                outcomes = iter(restorer.collect(restorer.submit(images)))
                for page, item in batch:
                    outcome = next(outcomes) if isinstance(item, np.ndarray) else item
                    rows.append(restored_row(page, outcome, out_dir, inputs))
                    if rows[-1]["error"]:
                        report_error(page, rows[-1]["error"])
                    bar.update()
    finally:
        restorer.close()
    if args.csv:
        atomic_write_text(Path(args.csv), pd.DataFrame(rows).round(4).to_csv(index=False))
    failures = sum(bool(row["error"]) for row in rows)
    if not args.quiet:
        print(f"restored {len(pages) - failures}/{len(pages)} images into {out_dir}")
    return 1 if failures else 0


def restored_row(
    page: Page,
    outcome: tuple[np.ndarray, RestoreRecord] | str | ImageLoadError,
    out_dir: Path,
    inputs: set[Path],
) -> dict[str, object]:
    """The CSV row of one page: where its restoration went, or why there is none."""
    row: dict[str, object] = {"path": page.name, "output": "", "error": ""}
    if isinstance(outcome, ImageLoadError | str):
        return row | {"error": error_reason(outcome) if isinstance(outcome, Exception) else outcome}
    restored, record = outcome
    try:
        target = output_path(out_dir, page.output_name())
        save_image(target, restored, inputs=inputs, metadata=page_metadata(page))
    except (OSError, ValueError) as error:
        return row | {"error": f"could not write the output: {error_reason(error)}"}
    return row | {"output": str(target.relative_to(out_dir))} | record.flat()


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
