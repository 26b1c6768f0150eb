"""`scancap caption`, `scancap train captioner` and `scancap evaluate captioner`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from scancap.batch import load_batches, report_error
from scancap.cli_args import (
    add_batch_options,
    add_data_options,
    add_inputs,
    add_models_option,
    add_training_output,
    data_options,
    model_folder,
    positive_int,
    training_output,
    write_report_and_tell,
)
from scancap.io import IMAGE_SUFFIXES, atomic_write_text
from scancap.pages import Page, list_pages
from scancap_lab.paths import reports_dir  # TEMPORARY: the CLI package removes this

CSV_COLUMNS = ["path", "caption", "skipped", "error"]
# Per decoded image: "" to caption it, else why not (set by the top-level cli, which may use
# the classifier: a chart captioned as "a baby playing with a ball" helps nobody).
PhotoCheck = Callable[[list[np.ndarray]], list[str]]
LIMIT_HELP = "only the first N train and N dev images (smoke tests)"
# TensorFlow loads in the handlers only, so `scancap --help` and the other stages stay fast.


def caption_files(
    pages: list[Page],
    model_dir: Path | None,
    beam: int,
    batch_size: int,
    max_pixels: int,
    check: PhotoCheck | None = None,
) -> Iterator[tuple[Path, dict[str, str]]]:
    """(page, CSV row) per page in input order; a bad file gets its error, the rest go on.

    Images are decoded one batch at a time, so memory does not grow with the number of files.
    With `check`, images it turns down are not captioned: their row says why (`skipped`).
    """
    from scancap.caption.model import Captioner

    captioner = Captioner.load(model_dir)
    for batch in load_batches(pages, batch_size, max_pixels):
        images = [item for _, item in batch if isinstance(item, np.ndarray)]
        reasons = check(images) if check and images else [""] * len(images)
        kept = [image for image, reason in zip(images, reasons, strict=True) if not reason]
        captions = iter(captioner.caption_images(kept, beam=beam))
        verdicts = iter(reasons)
        for page, item in batch:
            row = {"path": page.name, "caption": "", "skipped": "", "error": ""}
            if not isinstance(item, np.ndarray):
                row["error"] = item.reason
            elif reason := next(verdicts):
                row["skipped"] = reason
            else:
                row["caption"] = next(captions)[0]
            yield page, row


def cmd_caption(args: argparse.Namespace) -> int:
    """Caption every image found under the inputs: CSV with --out, else path<TAB>caption."""
    files = list_pages(args.inputs, args.pdf_dpi)
    rows = []
    check = None if args.all or args.photo_check is None else args.photo_check(args.models)
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


def caption_summary(rows: list[dict[str, str]], out: str | None) -> str:
    """What a run did, counted: "captioned 4/6 images (1 skipped, 1 unreadable) -> out.csv"."""
    skipped = sum(bool(row["skipped"]) for row in rows)
    failures = sum(bool(row["error"]) for row in rows)
    captioned = len(rows) - skipped - failures
    counts = f" ({skipped} skipped, {failures} unreadable)" if skipped or failures else ""
    target = f" -> {out}" if out else ""
    return f"captioned {captioned}/{len(rows)} images{counts}{target}"


def cmd_train(args: argparse.Namespace) -> int:
    from scancap.caption.train import train_captioner

    out = training_output(args)
    record = train_captioner(
        out=out,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        init=args.init,
        scst_epochs=args.scst_epochs,
        seed=args.seed,
        **data_options(args),
    )
    if record is None:
        print("stopped at the time budget: run the same command again to resume", file=sys.stderr)
        return 3
    if not args.quiet:
        best = record["best_dev_greedy"]
        print(
            f"saved to {out}: cross-entropy best epoch {record['best_epoch']}/"
            f"{record['epochs_run']}, dev greedy BLEU-4 {best['BLEU-4']:.4f}, "
            f"CIDEr-D {best['CIDEr-D']:.4f}"
        )
        if "scst" in record:
            scst, after = record["scst"], record["scst"]["dev_beam3_best"]
            print(
                f"self-critical best epoch {scst['best_epoch']}/{scst['epochs_run']}, dev beam-3 "
                f"BLEU-4 {after['BLEU-4']:.4f}, CIDEr-D {after['CIDEr-D']:.4f}"
            )
    return 0


def cmd_train_ensemble(args: argparse.Namespace) -> int:
    from scancap.caption.train import build_ensemble, chosen_row

    out = training_output(args)
    decoding = build_ensemble(args.members, out, **data_options(args))
    if not args.quiet:
        best = chosen_row(decoding)
        print(
            f"saved {len(args.members)} members to {out}: length exponent "
            f"{decoding['length_penalty']}, dev beam-{decoding['beam']} BLEU-4 "
            f"{best['BLEU-4']:.4f}, CIDEr-D {best['CIDEr-D']:.4f}"
        )
    return 0


def cmd_train_grounding(args: argparse.Namespace) -> int:
    from scancap.caption.train_grounding import train_grounding

    out = training_output(args)
    near = images_in(args.exclude_near) if args.exclude_near else []
    grounding = train_grounding(args.labels, args.model, exclude_near=near, **data_options(args))
    out.mkdir(parents=True, exist_ok=True)
    grounding.save(out)
    if not args.quiet:
        thresholds = ", ".join(
            f"p({name}) >= {d.threshold:.3f}"
            + (f" ({d.grainy_threshold:.3f} if grainy)" if d.grainy_threshold is not None else "")
            for name, d in grounding.detectors.items()
        )
        print(f"saved {out / 'grounding.json'}: {thresholds}")
        if grounding.reads_grain:
            print(f"a photo is grainy from σ̂ = {grounding.grain_level:.2f} (0-255)")
    return 0


def images_in(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from scancap_lab.caption.evaluate import write_report

    return write_report_and_tell(write_report, args)


def register_cli(
    commands: argparse._SubParsersAction,
    train_targets: argparse._SubParsersAction,
    evaluate_targets: argparse._SubParsersAction,
) -> None:
    """Add the captioning stage's subcommands to the `scancap` parser."""
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
    parser.add_argument(
        "--beam", type=positive_int, default=3, help="beam width (default 3; 1 is greedy decoding)"
    )
    add_models_option(parser)
    parser.add_argument("--batch-size", type=positive_int, default=32, help="images per batch (32)")
    add_batch_options(parser)
    parser.set_defaults(handler=cmd_caption, photo_check=None)

    train = train_targets.add_parser(
        "captioner",
        help="train the captioner on Flickr8k",
        description="Cache backbone features of Flickr8k train and dev, train the attention "
        "decoder on train by teacher forcing, then fine-tune it on its own samples with "
        "self-critical sequence training (reward: CIDEr-D); keep the epoch with the best dev "
        "CIDEr-D and save it into --out.",
    )
    add_training_output(train, "captioner")
    train.add_argument(
        "--epochs", type=positive_int, help="maximum cross-entropy epochs (default: the recipe's)"
    )
    train.add_argument(
        "--scst-epochs",
        type=int,
        help="maximum self-critical (CIDEr-D) epochs after them; 0 skips that phase "
        "(default: the recipe's)",
    )
    train.add_argument(
        "--init",
        type=Path,
        help="skip the cross-entropy phase: fine-tune the decoder in this folder instead",
    )
    train.add_argument(
        "--seed", type=int, help="random seed of both phases (default: the recipe's, 42)"
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        help="stop after the last epoch that fits (exit code 3); the same command resumes",
    )
    add_data_options(train, LIMIT_HELP)
    train.set_defaults(handler=cmd_train)

    ensemble = train_targets.add_parser(
        "captioner-ensemble",
        help="combine trained captioners into one",
        description="Copy trained decoders (folders written by `scancap train captioner`, same "
        "vocabulary) into --out as the members of one captioner that averages their next-word "
        "probabilities, and choose its beam search's length exponent on Flickr8k dev.",
    )
    ensemble.add_argument("members", nargs="+", type=Path, help="trained decoder folders")
    add_training_output(ensemble, "captioner-ensemble")
    add_data_options(ensemble, LIMIT_HELP)
    ensemble.set_defaults(handler=cmd_train_ensemble)

    grounding = train_targets.add_parser(
        "grounding",
        help="fit the captioner's person and animal detectors",
        description="Fit the detectors that keep captions from naming a person or an animal "
        "the photo does not show (Flickr8k train captions, tf_flowers photos), and set their "
        "thresholds on the select half of --labels. Writes grounding.json into --out; a "
        "captioner folder holding it captions with grounding.",
    )
    add_training_output(grounding, "grounding")
    grounding.add_argument(
        "--labels", type=Path, required=True,
        help="hand-labelled photos (CSV: path, part, person, animal, ...) whose select half "
        "sets the thresholds (the project's: benchmarks/labels/caption_ood.csv)",
    )  # fmt: skip
    grounding.add_argument(
        "--exclude-near", type=Path,
        help="folder of photos whose near copies are not trained on (photos a test judges)",
    )  # fmt: skip
    grounding.add_argument(
        "--model", type=Path, help="captioner folder whose backbone is used (models/captioner)"
    )
    add_data_options(
        grounding, "smoke test: the first N Flickr8k train photos, N per source, N per label set"
    )
    grounding.set_defaults(handler=cmd_train_grounding)

    evaluate = evaluate_targets.add_parser(
        "captioner",
        help="evaluate the captioner and rewrite reports/captioning.md",
        description="Caption Flickr8k dev (greedy and beam), score it, measure speed and "
        "memory, and rewrite the report and its figures.",
    )
    evaluate.add_argument("--model", type=Path, help="captioner folder (default: models/captioner)")
    evaluate.add_argument(
        "--report", type=Path, default=reports_dir() / "captioning.md", help="report to write"
    )
    add_data_options(evaluate, LIMIT_HELP)
    evaluate.set_defaults(handler=cmd_evaluate)
