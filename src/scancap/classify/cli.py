"""`scancap classify`, `scancap train classifier` and `scancap evaluate classifier`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from scancap.batch import report_error
from scancap.cli_args import (
    add_batch_options,
    add_data_options,
    add_inputs,
    add_models_option,
    add_training_output,
    data_options,
    model_folder,
    positive_int,
    probability,
    training_output,
    write_report_and_tell,
)
from scancap.io import ImageLoadError, atomic_write_text
from scancap.pages import Page, list_pages
from scancap_lab.paths import reports_dir  # TEMPORARY: the CLI package removes this

REPORT = reports_dir() / "classification.md"
RUNS_DIR = reports_dir() / "classification_runs"
CSV_COLUMNS = ["path", "is_photo", "p_photo", "subtype", "error"]
LIMIT_HELP = "at most N images per label and split (smoke tests)"
# Heavy modules (TensorFlow, matplotlib) are imported by the handlers, so `scancap --help`
# and the other stages do not pay for them.


def classify_files(
    files: list[Page],
    threshold: float | None,
    model_dir: Path | None,
    batch_size: int,
    max_pixels: int,
    quiet: bool,
) -> tuple[pd.DataFrame, int]:
    """One row per page, in input order; bad files get an error and do not stop the batch."""
    from scancap.classify.model import Classifier  # TensorFlow loads only for commands that need it

    classifier = Classifier.load(model_dir, threshold)
    rows: list[dict[str, object]] = []
    results = classifier.predict_files(files, batch_size, max_pixels)
    for page, result in tqdm(results, total=len(files), desc="classify", unit="img", disable=quiet):
        row = dict.fromkeys(CSV_COLUMNS, "") | {"path": page.name}
        if isinstance(result, ImageLoadError):
            row["error"] = result.reason
            report_error(page, result.reason)
        else:
            row |= {
                "is_photo": "true" if result.is_photo else "false",
                "p_photo": f"{result.p_photo:.6f}",
                "subtype": result.subtype,
            }
        rows.append(row)
    failures = sum(bool(row["error"]) for row in rows)
    return pd.DataFrame(rows, columns=CSV_COLUMNS), failures


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


def cmd_train(args: argparse.Namespace) -> int:
    from scancap.classify.train import train_classifier

    out = training_output(args)
    record = train_classifier(
        out=out, epochs=args.epochs, runs_dir=args.compare, **data_options(args)
    )
    if not args.quiet:
        test = record.metrics["test"]
        print(
            f"saved to {out}: test accuracy {test['accuracy'][0]:.4f}, "
            f"ROC-AUC {test['roc_auc'][0]:.4f}, threshold {record.calibration['threshold']:.3f}"
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from scancap_lab.classify.evaluate import write_report

    return write_report_and_tell(write_report, args, runs_dir=args.runs)


def register_cli(
    commands: argparse._SubParsersAction,
    train_targets: argparse._SubParsersAction,
    evaluate_targets: argparse._SubParsersAction,
) -> None:
    """Add the classification stage's subcommands to the `scancap` parser."""
    parser = commands.add_parser(
        "classify",
        help="photo or not, and the subtype of non-photos",
        description="Classify images as photo or not (painting, schematic, text, sketch). "
        "Writes one CSV row per file: path, is_photo, p_photo, subtype, error.",
    )
    add_inputs(parser)
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument(
        "--threshold",
        type=probability,
        help="p(photo) at or above which an image is a photo (default: the calibrated one "
        "in the model's calibration.json)",
    )
    add_models_option(parser)
    parser.add_argument("--batch-size", type=positive_int, default=32, help="images per batch (32)")
    add_batch_options(parser)
    parser.set_defaults(handler=cmd_classify)

    train = train_targets.add_parser(
        "classifier",
        help="train the photo-or-not classifier",
        description="Split the doctype data set (seed 42), cache backbone features and train "
        "the shipped classifier into --out, with its calibration and model card.",
    )
    add_training_output(train, "classifier")
    train.add_argument("--epochs", type=int, help="maximum epochs (default: the recipe's)")
    train.add_argument(
        "--compare",
        type=Path,
        nargs="?",
        const=RUNS_DIR,
        help=f"also train the compared models and ablations, saving their records here "
        f"(default {RUNS_DIR})",
    )
    add_data_options(train, LIMIT_HELP)
    train.set_defaults(handler=cmd_train)

    evaluate = evaluate_targets.add_parser(
        "classifier",
        help="evaluate the classifier and rewrite reports/classification.md",
        description="Evaluate the shipped classifier on its persisted split and rewrite the "
        "report and its figures.",
    )
    evaluate.add_argument(
        "--model", type=Path, help="classifier folder (default: models/classifier)"
    )
    evaluate.add_argument(
        "--runs", type=Path, default=RUNS_DIR, help="training-run records (from --compare)"
    )
    evaluate.add_argument("--report", type=Path, default=REPORT, help="report to write")
    add_data_options(evaluate, LIMIT_HELP)
    evaluate.set_defaults(handler=cmd_evaluate)
