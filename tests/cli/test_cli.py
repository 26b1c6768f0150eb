"""The `scancap` command as a stranger meets it: help, exit codes, shared option names."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scancap.cli import WORKFLOW_ORDER, build_parser, main
from scancap.cli.serve import API_KEY_VARIABLE, is_loopback, required_api_key


def test_help_lists_commands_in_workflow_order_with_formats_and_exit_codes() -> None:
    text = build_parser().format_help()
    listed = re.findall(r"^    (\w+) ", text, re.MULTILINE)
    assert listed == list(WORKFLOW_ORDER)
    assert "PDF" in text and "TIFF" in text and "#page=N" in text
    for code in ("0", "1", "2", "3", "130"):
        assert re.search(rf"^  {code} ", text, re.MULTILINE), code


@pytest.mark.parametrize("command", ["run", "classify", "caption"])
def test_every_command_using_the_models_calls_the_option_models(command: str) -> None:
    choices = build_parser()._subparsers._group_actions[0].choices  # noqa: SLF001
    options = {o for action in choices[command]._actions for o in action.option_strings}
    assert "--models" in options and "--model" not in options


def test_an_empty_folder_is_an_error_that_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "no images or PDFs found" in capsys.readouterr().err


def test_help_starts_fast_without_tensorflow() -> None:
    """`scancap --help` must not import TensorFlow (seconds, and log noise)."""
    code = "import sys; from scancap.cli import build_parser; build_parser(); "
    code += "print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_python_m_scancap_cli_is_the_scancap_command() -> None:
    command = [sys.executable, "-m", "scancap.cli", "--version"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("scancap "), result.stderr


def test_compare_records_go_to_a_folder_the_command_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`scancap train classifier --compare` has no default folder in the repository."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["train", "classifier", "--compare"])
    assert stopped.value.code == 2 and "--compare" in capsys.readouterr().err
    args = build_parser().parse_args(["train", "classifier", "--compare", "runs/compared"])
    assert args.compare == Path("runs/compared")


def test_tensorflow_start_up_lines_stay_out_of_stderr() -> None:
    """Its C++ side writes absl/oneDNN lines on import; scancap points them at /dev/null."""
    code = "import scancap, keras, tensorflow as tf; tf.constant(1) + 1; print('done')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "done"
    assert result.stderr == "", result.stderr


def test_scancap_messages_still_reach_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    code = main(["restore", str(tmp_path / "bad.jpg"), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 1 and "bad.jpg: not a valid JPEG file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags",
    [
        ["--threshold", "1.5"],
        ["--beam", "five"],
        ["--workers", "0"],
        ["--restore-strength", "0"],
        ["--time-limit", "0"],
        ["--restore-mode", "sharpest"],
    ],
)
def test_a_bad_flag_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    argv = ["run", str(tmp_path), "--out", str(tmp_path / "out"), *flags]
    try:
        code = main(argv)
    except SystemExit as stopped:  # argparse's own checks exit directly
        code = stopped.code
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "Traceback" not in error, error
    assert flags[0].lstrip("-").replace("-", "_") in error.replace("-", "_")


def test_a_rerun_with_nothing_to_do_names_each_failed_file_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    argv = ["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 1
    first = capsys.readouterr().err
    assert main(argv) == 1  # nothing to do, but the failure still stands
    again = capsys.readouterr().err
    assert "broken.jpg" in first and "broken.jpg" in again and "from an earlier run" in again


def test_serving_beyond_loopback_needs_an_api_key_unless_no_auth_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(API_KEY_VARIABLE, raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 2  # refused before any model loads
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and API_KEY_VARIABLE in said and "--no-auth" in said
    short, good = tmp_path / "short.key", tmp_path / "good.key"
    short.write_text("abc\n")
    good.write_text("s3cret-key-of-24-chars!!\nignored\n")
    assert main(["serve", "--host", "0.0.0.0", "--api-key-file", str(short)]) == 2
    assert "too short" in capsys.readouterr().err
    assert required_api_key("0.0.0.0", good, no_auth=False) == "s3cret-key-of-24-chars!!"
    assert required_api_key("0.0.0.0", None, no_auth=True) is None  # said explicitly
    for host in ("127.0.0.1", "127.8.0.1", "localhost", "::1"):
        assert required_api_key(host, None, no_auth=False) is None  # this machine only
    assert not is_loopback("scanner-host.local") and not is_loopback("192.168.1.10")
    monkeypatch.setenv(API_KEY_VARIABLE, "from-the-environment-123")
    assert required_api_key("0.0.0.0", None, no_auth=False) == "from-the-environment-123"
    assert required_api_key("127.0.0.1", None, no_auth=False) == "from-the-environment-123"
