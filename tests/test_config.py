"""Settings: defaults, then TOML, then flags; typos are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scancap.cli import main
from scancap.config import RESTORE_MODES, ConfigError, RunConfig, load_config


def test_toml_then_flags_override_defaults(tmp_path: Path) -> None:
    path = tmp_path / "scancap.toml"
    path.write_text('[run]\nbeam = 5\nrestore_mode = "auto"\ncopy_non_photos = true\n')
    config = load_config(path, beam=2, threshold=None)
    assert config.beam == 2 and config.restore_mode == "auto" and config.copy_non_photos
    assert config.threshold is None and config.workers == RunConfig().workers


def test_unknown_setting_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[run]\nbeam_size = 5\n")
    with pytest.raises(ValueError, match="bad.toml: unknown setting"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("threshold = 0.5\n[run]\nbeam = 2\n", "unknown setting threshold outside [run]"),
        ("[rnu]\nthreshold = 0.5\n", "unknown table [rnu]"),
        ('run = "fast"\n', "run must be a table"),
    ],
)
def test_settings_outside_the_run_table_are_errors_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / "scancap.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)
    assert main(["run", str(tmp_path), "--out", str(tmp_path / "out"), "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and expected in error


BAD_VALUES = [
    ('threshold = "high"', "threshold = 'high'"),
    ("threshold = 1.5", "less than or equal to 1"),
    ('beam = "five"', "beam = 'five'"),
    ("workers = 0", "workers = 0"),
    ("restore_strength = 0", "restore_strength = 0"),
    ('restore_mode = "sharpest"', "restore_mode = 'sharpest'"),
    ("copy_non_photos = 1", "copy_non_photos = 1"),
    ("[run", "not valid TOML"),
]


@pytest.mark.parametrize(("line", "expected"), BAD_VALUES)
def test_a_bad_toml_value_is_one_line_naming_key_and_value(
    tmp_path: Path, line: str, expected: str
) -> None:
    path = tmp_path / "scancap.toml"
    path.write_text(f"[run]\n{line}\n" if not line.startswith("[") else line)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert expected in message and str(path) in message and "\n" not in message


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_bad_configuration_stops_the_command_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Exit status 2 and one line on stderr; `scancap serve` never starts its server."""
    path = tmp_path / "scancap.toml"
    path.write_text('[run]\nthreshold = "high"\n')
    argv = [command, "--config", str(path)]
    if command == "run":
        argv += [str(tmp_path), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: configuration:") and error.count("\n") == 1
    assert "Traceback" not in error and not (tmp_path / "out").exists()


def test_a_bad_flag_value_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(tmp_path), "--out", str(tmp_path / "out"), "--restore-strength", "0"]
    assert main(argv) == 2
    assert "flags: restore_strength = 0.0" in capsys.readouterr().err


def test_config_knows_every_restoration_mode() -> None:
    from scancap.restore.auto import MODES

    assert set(RESTORE_MODES) == set(MODES)
