"""`scancap evaluate classifier|captioner`: measure a model on a person's own labelled images.

(The committed reports on the datasets are the lab's: `python -m scancap_lab.reports`.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from scancap.batch import report_error
from scancap.cli.caption import add_beam_option
from scancap.cli.classify import add_threshold_option
from scancap.cli.options import (
    UsageError,
    add_batch_options,
    add_batch_size,
    add_models_option,
    model_folder,
)
from scancap.io import atomic_write_text
from scancap.page_table import TableError

LABELS_HELP = (
    "CSV with columns path and label (photo, painting, schematic, text or sketch); a path is "
    "absolute or relative to the CSV's folder, a PDF or TIFF page is file.pdf#page=N, and a "
    "document named whole stands for all of its pages"
)
REFERENCES_HELP = (
    "CSV with columns path and caption, one reference caption per row (several rows for one "
    "path: several references); paths as in `scancap evaluate classifier`"
)


def cmd_evaluate_classifier(args: argparse.Namespace) -> int:
    from scancap.classify.assess import assess, describe, predict_labelled, read_labels

    labels = read_table(read_labels, args.labels, args.pdf_dpi)
    predictions, threshold = predict_labelled(
        labels, model_folder(args, "classifier"), args.threshold, args.batch_size,
        args.max_pixels, args.quiet,
    )  # fmt: skip
    result = assess(predictions, threshold)
    tell(result, describe, args)
    return 1 if result["unreadable"] else 0


def cmd_evaluate_captioner(args: argparse.Namespace) -> int:
    from scancap.caption.assess import assess, describe, read_references, require_scorer
    from scancap.caption.files import caption_files

    pages, references = read_table(read_references, args.references, args.pdf_dpi)
    try:
        require_scorer()  # before the captioner loads and runs
    except ModuleNotFoundError as error:
        raise UsageError(str(error)) from None
    captions = {}
    results = caption_files(
        pages, model_folder(args, "captioner"), args.beam, args.batch_size, args.max_pixels
    )
    for page, row in tqdm(
        results, total=len(pages), desc="caption", unit="img", disable=args.quiet
    ):
        if row["error"]:
            report_error(page, row["error"])
        else:
            captions[page.name] = row["caption"]
    result = assess(captions, references) | {"beam": args.beam}
    tell(result, describe, args)
    return 1 if result["unreadable"] else 0


def read_table(read: Callable, table: Path, dpi: int) -> object:
    """`read(table, dpi)`; a bad table is a usage error (one line, exit status 2)."""
    try:
        return read(table, dpi)
    except TableError as error:
        raise UsageError(str(error)) from None


def tell(result: dict, describe: Callable[[dict], str], args: argparse.Namespace) -> None:
    """The numbers as JSON into --out, and as a short table on stdout unless --quiet."""
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    if not args.quiet:
        print(describe(result), file=sys.stdout)


def add_target(
    targets: argparse._SubParsersAction,
    name: str,
    handler: Callable[[argparse.Namespace], int],
    table: tuple[str, str, str],
    add_options: Callable[[argparse.ArgumentParser], None],
    **texts: str,
) -> None:
    """One model to measure: its CSV, --out (JSON), its own options, --models, then the
    options of every command reading images."""
    parser = targets.add_parser(name, **texts)
    dest, metavar, table_help = table
    parser.add_argument(dest, type=Path, metavar=metavar, help=table_help)
    parser.add_argument(
        "--out", type=Path, metavar="FILE.json", help="also write the numbers to this JSON file"
    )
    add_options(parser)
    add_models_option(parser)
    add_batch_size(parser)
    add_batch_options(parser)
    parser.set_defaults(handler=handler)


def add_parser(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="measure a model on your own labelled images")
    targets = evaluate.add_subparsers(dest="target", required=True)
    add_target(
        targets, "classifier", cmd_evaluate_classifier,
        ("labels", "LABELS.csv", LABELS_HELP), add_threshold_option,
        help="how well the classifier sorts your labelled images",
        description="Classify the images a CSV labels and print photo-or-not accuracy, photo "
        "recall and precision, the share of paintings kept out, ROC-AUC, the subtype given to "
        "non-photos (95% bootstrap intervals) and the confusion table. An unreadable image is "
        "reported and left out (exit status 1).",
    )  # fmt: skip
    add_target(
        targets, "captioner", cmd_evaluate_captioner,
        ("references", "REFS.csv", REFERENCES_HELP), add_beam_option,
        help="how well the captioner describes your photos",
        description="Caption every image a CSV names (photo or not) and print corpus BLEU-4 "
        "and CIDEr-D against its reference captions (scancap's tokenizer; needs pycocoevalcap, "
        "the bench extra). An unreadable image is reported and left out (exit status 1).",
    )  # fmt: skip
