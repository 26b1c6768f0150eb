"""`scancap evaluate`: a model measured on a person's own labelled images, and the CSVs naming
them (a bad row is one line naming it, exit status 2)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from scancap.cli import main
from scancap.page_table import TableError, read_page_table
from scancap.paths import models_dir

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_FILES = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png"})
PHOTOS = [p for p in SAMPLE_FILES if p.name.startswith("photo_")][:2]
LABELS = ("photo", "painting", "schematic", "text", "sketch")
needs_classifier = pytest.mark.skipif(
    not (models_dir() / "classifier" / "classifier.keras").exists(), reason="no shipped classifier"
)
needs_captioner = pytest.mark.skipif(
    not (models_dir() / "captioner").is_dir(), reason="no shipped captioner"
)


def write_csv(path: Path, header: str, rows: list[tuple[str, str]]) -> Path:
    path.write_text("\n".join([header, *(f"{a},{b}" for a, b in rows)]) + "\n")
    return path


def write_pdf(path: Path, sources: list[Path]) -> Path:
    pages = [Image.open(source).convert("RGB") for source in sources]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def true_label(path: Path) -> str:
    """The samples' file names start with their class."""
    return path.name.split("_")[0]


# --- the CSV naming pages ---------------------------------------------------------------------


def test_a_table_names_files_relative_to_itself_and_pages_of_documents(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_pdf(tmp_path / "sub" / "scan.pdf", SAMPLE_FILES[:2])
    rows = [
        (str(SAMPLE_FILES[0]), "Photo"),
        ("sub/scan.pdf", "text"),
        ("sub/scan.pdf#page=2", "text"),
    ]
    table = read_page_table(
        write_csv(tmp_path / "labels.csv", "path,label", rows), ["label"], choices={"label": LABELS}
    )
    assert list(table["name"]) == [
        str(SAMPLE_FILES[0]), "sub/scan.pdf#page=1", "sub/scan.pdf#page=2", "sub/scan.pdf#page=2"
    ]  # fmt: skip
    assert list(table["line"]) == [2, 3, 3, 4]
    assert list(table["label"]) == ["photo", "text", "text", "text"]
    assert table["page"].iloc[3].file == tmp_path / "sub" / "scan.pdf"
    assert table["page"].iloc[3].number == 2


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("path,kind", ("a.jpg", "photo"), "no label column"),
        ("path,label", ("{sample}", "cat"), "line 3: {sample}: unknown label 'cat' (one of"),
        ("path,label", ("missing.jpg", "photo"), "line 3: no such file: "),
        ("path,label", ("{sample}", ""), "line 3: empty label"),
        ("path,label", ("scan.pdf#page=3", "text"), "line 3: {tmp}/scan.pdf has no page 3"),
    ],
)
def test_a_bad_row_is_named_with_its_reason(
    tmp_path: Path, header: str, row: tuple[str, str], message: str
) -> None:
    write_pdf(tmp_path / "scan.pdf", SAMPLE_FILES[:2])
    good = (str(SAMPLE_FILES[0]), "photo")
    row = (row[0].format(sample=SAMPLE_FILES[1]), row[1])
    labels = write_csv(tmp_path / "labels.csv", header, [good, row])
    with pytest.raises(TableError) as raised:
        read_page_table(labels, ["label"], choices={"label": LABELS})
    assert str(raised.value).startswith(str(labels))
    assert message.format(sample=SAMPLE_FILES[1], tmp=tmp_path) in str(raised.value)


# --- scancap evaluate classifier -------------------------------------------------------------


def test_a_bad_labels_file_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [(str(SAMPLE_FILES[0]), "photo"), ("gone.png", "sketch")]
    labels = write_csv(tmp_path / "labels.csv", "path,label", rows)
    assert main(["evaluate", "classifier", str(labels)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith(f"error: {labels} line 3: no such file: ") and "gone.png" in error


@needs_classifier
@pytest.mark.slow
def test_the_classifier_measured_on_the_samples_agrees_with_scancap_classify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every number follows from the verdicts `scancap classify` gives the same files; an
    unreadable image is reported, left out and makes the exit status 1."""
    from scancap.classify.metrics import roc_auc

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows = [(str(path), true_label(path)) for path in SAMPLE_FILES] + [("broken.jpg", "photo")]
    labels = write_csv(tmp_path / "labels.csv", "path,label", rows)
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "classifier", str(labels), "--out", str(out)]) == 1
    printed, errors = capsys.readouterr()
    assert "broken.jpg" in errors
    result = json.loads(out.read_text())
    assert result["images"] == len(SAMPLE_FILES) and result["unreadable"] == 1

    verdicts = tmp_path / "verdicts.csv"
    assert main(["classify", *map(str, SAMPLE_FILES), "--out", str(verdicts), "--quiet"]) == 0
    table = pd.read_csv(verdicts, dtype=str, keep_default_na=False)
    table["label"] = [true_label(Path(name)) for name in table["path"]]
    called_photo, is_photo = table["is_photo"] == "true", table["label"] == "photo"
    others, paintings = table[~is_photo], table[table["label"] == "painting"]
    expected = {
        "accuracy": (called_photo == is_photo).mean(),
        "photo_recall": called_photo[is_photo].mean(),
        "photo_precision": is_photo[called_photo].mean(),
        "paintings_kept_out": (paintings["is_photo"] == "false").mean(),
        "subtype_accuracy": (others["subtype"] == others["label"]).mean(),
    }
    for name, value in expected.items():
        measured = result[name]
        assert measured["value"] == pytest.approx(value), name
        assert measured["ci95"][0] <= measured["value"] <= measured["ci95"][1], name
    ranked = roc_auc(is_photo.to_numpy(), table["p_photo"].astype(float).to_numpy())
    assert result["roc_auc"]["value"] == pytest.approx(ranked, abs=1e-6)
    confusion = pd.crosstab(table["label"], table["subtype"])
    for label, row in confusion.iterrows():
        for called, count in row.items():
            assert result["confusion"][label][called] == count, (label, called)
    assert sum(map(sum, (row.values() for row in result["confusion"].values()))) == len(table)
    accuracy = result["accuracy"]
    shown = f"{accuracy['value']:.4f} [{accuracy['ci95'][0]:.4f}, {accuracy['ci95'][1]:.4f}]"
    assert f"accuracy (photo or not)   {shown}" in printed
    assert "label \\ called" in printed


# --- scancap evaluate captioner --------------------------------------------------------------


def test_scoring_captions_without_pycocoevalcap_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pycocoevalcap", None)  # as if it were not installed
    refs = write_csv(tmp_path / "refs.csv", "path,caption", [(str(PHOTOS[0]), "a dog")])
    assert main(["evaluate", "captioner", str(refs)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "pycocoevalcap" in error and "pip install" in error


@needs_captioner
@pytest.mark.slow
def test_the_captioner_is_scored_against_several_references_per_photo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refs = write_csv(
        tmp_path / "refs.csv",
        "path,caption",
        [
            (str(PHOTOS[0]), "a man is standing on a rock"),
            (str(PHOTOS[0]), "a person stands outside"),
            (str(PHOTOS[1]), "a dog runs on the grass"),
            (str(PHOTOS[1]), "a brown dog is playing in a field"),
            (str(PHOTOS[1]), "a dog in the grass"),
        ],
    )
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "captioner", str(refs), "--beam", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 2 and result["references"] == 5 and result["unreadable"] == 0
    assert result["beam"] == 2
    printed = capsys.readouterr().out
    for name in ("BLEU-4", "CIDEr-D"):
        assert math.isfinite(result[name]) and result[name] >= 0, name
        assert f"{name:<12}{result[name]:.4f}" in printed, name


# --- the committed reports are the lab's ----------------------------------------------------


def test_the_lab_rewrites_the_reports_with_the_old_options() -> None:
    from scancap_lab.paths import REPORTS
    from scancap_lab.reports import build_parser

    parser = build_parser()
    args = parser.parse_args(["classification", "--limit", "3", "--quiet"])
    assert args.runs == REPORTS / "classification_runs"
    assert args.report == REPORTS / "classification.md"
    assert (args.limit, args.quiet, args.data, args.cache, args.model) == (
        3,
        True,
        None,
        None,
        None,
    )
    args = parser.parse_args(["captioning", "--model", "m", "--data", "d", "--cache", "c"])
    assert args.report == REPORTS / "captioning.md"
    assert (args.model, args.data, args.cache) == (Path("m"), Path("d"), Path("c"))
    assert not hasattr(args, "runs")
