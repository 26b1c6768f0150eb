"""What produced a run's rows: scancap's version, the effective settings and the models.

`scancap run` writes it to ``run.json`` in the output folder and keys every ledger row by its
fingerprint, so a rerun with other settings or other models reprocesses its rows (and says
which settings changed) instead of silently keeping old results.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scancap.io import atomic_write_text

RUN_FILE = "run.json"
SPEED_ONLY = frozenset({"workers", "batch_size"})  # settings that change speed, not results


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Content hash of a file, read in chunks so large scans do not fill memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """One content hash of every file under a model folder (relative names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Provenance:
    scancap: str
    settings: dict[str, Any]  # the effective ones: the threshold actually used, not None
    models: dict[str, str]  # model name -> content hash of its folder

    def fingerprint(self) -> str:
        """Equal for two runs exactly when their rows would be equal."""
        results = {k: v for k, v in self.settings.items() if k not in SPEED_ONLY}
        key = json.dumps([self.scancap, results, self.models], sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def changes_from(self, previous: Provenance) -> list[str]:
        """What differs from an earlier run, in words: "threshold 0.8 -> 0.99"."""
        changed = [
            f"{key} {_shown(previous.settings.get(key))} -> {_shown(value)}"
            for key, value in self.settings.items()
            if key not in SPEED_ONLY and previous.settings.get(key) != value
        ]
        changed += [
            f"{name} model changed"
            for name, digest in self.models.items()
            if previous.models.get(name) != digest
        ]
        if previous.scancap != self.scancap:
            changed.append(f"scancap {previous.scancap} -> {self.scancap}")
        return changed

    def write(self, out: Path) -> None:
        document = asdict(self) | {"fingerprint": self.fingerprint()}
        atomic_write_text(out / RUN_FILE, json.dumps(document, indent=1) + "\n")

    @classmethod
    def read(cls, out: Path) -> Provenance | None:
        """The provenance an earlier run left in `out`, if any (and readable)."""
        try:
            document = json.loads((out / RUN_FILE).read_text())
            return cls(document["scancap"], document["settings"], document["models"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _shown(value: Any) -> str:
    """A setting as a person reads it: 0.7234887850842162 as 0.7235."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
