"""Only the person detector learns degraded copies: the sixteenth change's selection step.

    .venv/bin/python benchmarks/grounding_person_degraded.py

Candidates (the rule: "Sixteenth change" in `reports/captioning_experiments.md`):

- clean: the shipped recipe, refit without the held-out photos;
- person-degraded: the same, but the person detector (MIL on regions) also trains on each
  photo's degraded copy (`scancap.caption.train_grounding.degraded_copy`); the animal and
  flower detectors train on the photos alone.

The data, held-out photos, operating-point rule and measures are the fifteenth change's
(`benchmarks/grounding_degraded.py`). Dev, the report half, the third part and COCO-mini are
not read. Writes `reports/grounding_person_degraded.md`.
"""

from __future__ import annotations

import pandas as pd
from grounding_degraded import fit_candidates, held_out_study, report, verdict

from scancap.caption.samples import KNOWN_MISSES, SUBJECTS
from scancap.paths import REPO_ROOT

REPORT = REPO_ROOT / "reports" / "grounding_person_degraded.md"
TITLE = "Only the person detector learns degraded copies (sixteenth change, selection step)"
CANDIDATE = "person-degraded"


def decision(table: pd.DataFrame, samples: dict[str, dict[str, str]], neither: int) -> str:
    """The sixteenth rule: the person detector's degraded recall, and every sample the shipped
    grounding captions right still right."""
    kept = all(
        samples[CANDIDATE][n].startswith("passes") for n in SUBJECTS if n not in KNOWN_MISSES
    )
    check = (kept, "4. the samples the shipped grounding captions right stay right")
    return verdict(table, neither, CANDIDATE, ("person",), check)


def main() -> None:
    base = held_out_study()
    candidates = {"clean": frozenset(), CANDIDATE: frozenset({"person"})}
    report(base, *fit_candidates(base, candidates), decision, REPORT, TITLE)


if __name__ == "__main__":
    main()
