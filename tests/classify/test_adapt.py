"""The review queue and adaptation from corrections: `scancap review` and `scancap adapt` on the
bundled samples, the adapted folder used by `run`, `classify` and the service, and the numeric
parts (queue order, propagation) on real features."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scancap.classify.adapt import Propagation, margin_residuals, propagated
from scancap.cli import main
from scancap.paths import models_dir

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HILBERT = SAMPLES / "photo_David_Hilbert.png"  # a photo the shipped classifier calls a painting
needs_classifier = pytest.mark.skipif(
    not (models_dir() / "classifier" / "classifier.keras").exists(), reason="no shipped classifier"
)


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def true_label(location: str) -> str:
    """The samples' file names start with their class."""
    return Path(location).name.split("_")[0]


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """classify the samples from another folder, review 6 of them, label them, adapt."""
    work = tmp_path_factory.mktemp("review")
    before = folder_digest(models_dir() / "classifier")
    classified = work / "classified.csv"
    assert main(["classify", str(SAMPLES), "--out", str(classified), "--quiet"]) == 0
    review = work / "review.csv"
    assert main(["review", str(classified), "--limit", "6", "--out", str(review), "--quiet"]) == 0
    queue = pd.read_csv(review, keep_default_na=False)
    labelled = queue.assign(label=[true_label(path) for path in queue["path"]])
    # the person also corrects the one photo the classifier gets wrong
    hilbert = {"path": str(HILBERT), "p_photo": "", "predicted": "painting", "label": "photo"}
    labelled = pd.concat([labelled, pd.DataFrame([hilbert])], ignore_index=True)
    count = labelled["path"].nunique()  # the queue may hold it already: one correction
    corrections = work / "corrections.csv"
    labelled.to_csv(corrections, index=False)
    adapted = work / "adapted"
    assert main(["adapt", str(corrections), "--out", str(adapted), "--quiet"]) == 0
    return {"work": work, "classified": classified, "review": review, "adapted": adapted,
            "corrections": corrections, "before": before, "count": count}  # fmt: skip


@needs_classifier
def test_the_review_file_names_pages_anyone_can_open_with_an_empty_label(
    reviewed: dict,
) -> None:
    queue = pd.read_csv(reviewed["review"], keep_default_na=False)
    assert list(queue.columns) == ["path", "p_photo", "predicted", "label"]
    assert len(queue) == 6 and queue["path"].is_unique
    assert all(Path(path).is_absolute() and Path(path).exists() for path in queue["path"])
    assert set(queue["label"]) == {""}
    assert set(queue["predicted"]) <= {"photo", "painting", "schematic", "text", "sketch"}
    # the least certain first: p(photo) closest to the threshold, in calibrated-logit terms
    from scancap.classify.model import Classifier

    margins = Classifier.load().calibration.margins_of(queue["p_photo"].to_numpy())
    assert (np.diff(np.abs(margins)) >= -1e-6).all()


@needs_classifier
def test_adapt_writes_a_complete_folder_and_leaves_the_base_as_it_was(
    reviewed: dict,
) -> None:
    adapted = reviewed["adapted"]
    assert folder_digest(models_dir() / "classifier") == reviewed["before"]
    for name in ("classifier.keras", "calibration.json", "adaptation.npz", "adapted.md"):
        assert (adapted / "classifier" / name).is_file(), name
    assert (adapted / "captioner" / "decoding.json").is_file()
    card = (adapted / "classifier" / "adapted.md").read_text()
    digest = hashlib.sha256(reviewed["corrections"].read_bytes()).hexdigest()
    assert digest in card and f"{reviewed['count']} corrections" in card


@needs_classifier
def test_the_adapted_model_corrects_the_item_and_leaves_the_others(
    reviewed: dict,
) -> None:
    again = reviewed["work"] / "again.csv"
    argv = ["classify", str(SAMPLES), "--out", str(again), "--quiet"]
    assert main([*argv, "--models", str(reviewed["adapted"])]) == 0
    before = pd.read_csv(reviewed["classified"]).set_index("path")
    after = pd.read_csv(again).set_index("path")
    assert before.loc[HILBERT.name, "subtype"] == "painting"
    assert after.loc[HILBERT.name, "subtype"] == "photo"
    others = before.index.drop(HILBERT.name)
    assert (after.loc[others, "subtype"] == before.loc[others, "subtype"]).all()


@needs_classifier
def test_a_run_with_the_adapted_models_has_its_own_fingerprint(
    reviewed: dict, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / HILBERT.name).write_bytes(HILBERT.read_bytes())
    shipped, adapted = tmp_path / "shipped", tmp_path / "adapted"
    options = ["--quiet", "--restore-mode", "none", "--ocr", "off"]
    assert main(["run", str(tmp_path / "in"), "--out", str(shipped), *options]) == 0
    models = ["--models", str(reviewed["adapted"])]
    assert main(["run", str(tmp_path / "in"), "--out", str(adapted), *options, *models]) == 0
    runs = [json.loads((out / "run.json").read_text()) for out in (shipped, adapted)]
    assert runs[0]["models"]["classifier"] != runs[1]["models"]["classifier"]
    rows = [pd.read_parquet(out / "manifest.parquet").iloc[0] for out in (shipped, adapted)]
    assert (rows[0]["subtype"], rows[1]["subtype"]) == ("painting", "photo")
    assert Path(rows[1]["file"]) == (tmp_path / "in" / HILBERT.name).absolute()


@needs_classifier
def test_the_service_answers_with_the_adapted_models(reviewed: dict) -> None:
    from fastapi.testclient import TestClient

    from scancap.service import create_app

    with TestClient(create_app(models=reviewed["adapted"])) as client:
        answer = client.post("/v1/analyze", files={"file": (HILBERT.name, HILBERT.read_bytes())})
    assert answer.status_code == 200 and answer.json()["is_photo"] is True


@pytest.mark.parametrize(
    ("row", "reason"),
    [("cat", "unknown label 'cat'"), ("", "no row has a label")],
)
def test_a_bad_corrections_file_is_one_line_naming_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], row: str, reason: str
) -> None:
    corrections = tmp_path / "corrections.csv"
    corrections.write_text(f"path,label\n{HILBERT},{row}\n")
    assert main(["adapt", str(corrections), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and reason in error
    if row:
        assert "line 2" in error
    assert not (tmp_path / "out").exists()


def test_review_refuses_what_is_not_a_run_or_a_classify_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", str(tmp_path), "--out", str(tmp_path / "r.csv")]) == 2
    assert "not a scancap run folder" in capsys.readouterr().err


# --- the numeric parts, on real features ----------------------------------------------------------


@pytest.fixture(scope="module")
def sample_features() -> tuple[list[str], np.ndarray]:
    """The samples' pooled Lite0 features, names in sorted order."""
    from scancap.classify.model import Classifier
    from scancap.io import load_image

    files = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    classifier = Classifier.load()
    _, grids = classifier.predict_with_features([load_image(p) for p in files])
    return [p.name for p in files], grids.mean(axis=1)


@needs_classifier
def test_a_correction_moves_its_look_alikes_and_not_the_others(
    sample_features: tuple[list[str], np.ndarray],
) -> None:
    names, pooled = sample_features
    settings = Propagation()
    reviewed = pooled[[names.index("painting_Alfred_Sisley_0000.jpg")]]
    residual = margin_residuals(np.array([-6.0]), np.array([True]), settings.target)[:, None]
    moved = propagated(pooled, reviewed, residual, settings)[:, 0]
    by_name = dict(zip(names, moved, strict=True))
    share = 1 / (1 + settings.ridge)  # the ridge weighs one correction against none
    assert by_name["painting_Alfred_Sisley_0000.jpg"] == pytest.approx(share * residual[0, 0], 1e-3)
    schematic = by_name["schematic_sparkfun-sensors_hmc6042_schematic.png"]
    assert by_name["painting_Alfred_Sisley_0001.jpg"] > schematic
    assert abs(by_name["text_596.jpg"]) < 0.05 * residual[0, 0]


def test_the_service_takes_corrections_into_the_file_adapt_reads(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from scancap.classify.corrections import read_corrections
    from scancap.service import create_app

    target = tmp_path / "corrections.csv"
    app = create_app(pipeline=object(), corrections=target)  # corrections need no model
    client = TestClient(app)  # no lifespan: the models are not loaded
    first = [{"path": str(HILBERT), "label": "photo"}]
    second = [{"path": str(SAMPLES / "sketch_5440.png"), "label": "sketch"}]
    assert client.post("/v1/corrections", json={"corrections": first}).json()["total"] == 1
    assert client.post("/v1/corrections", json={"corrections": second}).json()["total"] == 2
    read = read_corrections([target])
    assert list(read["label"]) == ["photo", "sketch"]
    missing = [{"path": str(tmp_path / "nowhere.png"), "label": "photo"}]
    answer = client.post("/v1/corrections", json={"corrections": missing})
    assert answer.status_code == 422 and "correction 1: no such file" in answer.json()["detail"]
    bad = client.post("/v1/corrections", json={"corrections": [{"path": "x", "label": "cat"}]})
    assert bad.status_code == 422 and "label" in bad.json()["detail"]
    assert len(read_corrections([target])) == 2  # refused rows are not appended
