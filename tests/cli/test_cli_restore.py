"""`scancap restore` end to end on a folder with good and bad files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pandas as pd
import pytest

from scancap.cli import main
from scancap.io import load_image
from scancap.quality import psnr

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    (folder / "old").mkdir(parents=True)
    shutil.copy(SAMPLES / "photo_Old_Tom_Morris.png", folder / "old" / "tom.png")
    shutil.copy(SAMPLES / "photo_200557981_f800fa1af9.jpg", folder / "flower.jpg")
    jpeg = (SAMPLES / "photo_4495885281_fe2a3b671d.jpg").read_bytes()
    (folder / "corrupt.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "notes.jpg").write_text("not an image, just text\n")
    (folder / "readme.txt").write_text("ignored: not an image suffix\n")
    return folder


def test_restore_cli_processes_good_files_and_reports_bad_ones(
    batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: digest(p) for p in batch.rglob("*") if p.is_file()}
    out, csv = tmp_path / "out", tmp_path / "restore.csv"
    code = main(["restore", str(batch), "--out", str(out), "--csv", str(csv), "--quiet"])
    assert code == 1
    assert (out / "old" / "tom.png").exists() and (out / "flower.jpg").exists()
    assert not (out / "corrupt.jpg").exists() and not (out / "readme.txt").exists()
    rows = pd.read_csv(csv, keep_default_na=False).set_index("path")
    assert set(rows.index) == {"old/tom.png", "flower.jpg", "corrupt.jpg", "notes.jpg"}
    assert "truncated or corrupt" in rows.loc["corrupt.jpg", "error"]
    assert "not a valid JPEG file" in rows.loc["notes.jpg", "error"]
    assert rows.loc["old/tom.png", "error"] == ""
    assert rows.loc["old/tom.png", "denoiser"] == "dct-wiener"  # a real noisy old photograph
    stderr = capsys.readouterr().err
    assert "corrupt.jpg" in stderr and "Traceback" not in stderr
    assert before == {p: digest(p) for p in batch.rglob("*") if p.is_file()}
    numbers = [line for line in csv.read_text().splitlines()[1:] if "e-" in line]
    assert not numbers, "the CSV rounds its measurements"


def test_restore_cli_time_limit_and_strength(
    batch: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, csv = batch / "old" / "tom.png", tmp_path / "r.csv"
    args = ["restore", str(source), "--out", str(tmp_path / "o"), "--csv", str(csv), "--quiet"]
    assert main([*args, "--time-limit", "0.0001", "--workers", "1"]) == 1
    assert "limit" in pd.read_csv(csv, keep_default_na=False)["error"][0]
    assert main([*args, "--strength", "0.5"]) == 0
    gentle = pd.read_csv(csv)["denoise_sigma"][0]
    assert main([*args, "--strength", "2"]) == 0
    assert pd.read_csv(csv)["denoise_sigma"][0] > gentle
    with pytest.raises(SystemExit) as refused:
        main([*args, "--strength", "0"])
    assert refused.value.code == 2 and "(0, 4]" in capsys.readouterr().err


def test_restore_cli_mode_none_is_lossless_for_png(batch: Path, tmp_path: Path) -> None:
    source = batch / "old" / "tom.png"
    code = main(["restore", str(source), "--out", str(tmp_path / "o"), "--mode", "none", "--quiet"])
    assert code == 0
    assert psnr(load_image(source), load_image(tmp_path / "o" / "tom.png")) == 100.0


def test_restore_cli_missing_input_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    assert "nowhere" in capsys.readouterr().err
