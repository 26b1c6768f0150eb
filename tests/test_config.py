"""Settings: defaults, then TOML, then flags; typos are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from scancap.config import RunConfig, load_config


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
