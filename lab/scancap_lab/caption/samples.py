"""What the bundled sample photos show, so that the sample test and every selection step judge
their captions by the same words (the issue: each names its real subject and invents no other)."""

from __future__ import annotations

from collections.abc import Iterable

from scancap.caption.grounding import ANIMAL_WORDS, PERSON_WORDS
from scancap_lab.paths import REPO_ROOT

SAMPLES = REPO_ROOT / "samples"
SUBJECTS = {  # sample -> (words of which one must appear, concepts that must not: person, animal)
    "photo_200557981_f800fa1af9.jpg": ({"flower", "flowers", "sunflower", "sunflowers"}, "pa"),
    "photo_2600382379_5791b0b35a_m.jpg": ({"flower", "flowers", "dandelion"}, "pa"),
    "photo_4495885281_fe2a3b671d.jpg": ({"flower", "flowers", "rose", "roses"}, "pa"),
    "photo_Building.png": ({"building", "buildings", "house", "church"}, "pa"),
    "photo_David_Hilbert.png": ({"man", "person"}, "a"),
    "photo_Old_Tom_Morris.png": ({"man", "person"}, "a"),
}

# The dandelion's bokeh reads as an animal and its flower score stays under the threshold, so
# the shipped grounding names an animal (a bird since the dog gate): a known miss, listed in the
# README's results and a strict xfail of the sample test.
KNOWN_MISSES = {"photo_2600382379_5791b0b35a_m.jpg"}


def names_its_subject(name: str, words: Iterable[str]) -> bool:
    """Whether a caption of the sample `name` names its subject and no person or animal that
    the sample does not show."""
    required, forbidden = SUBJECTS[name]
    said = set(words)
    invented = ("p" in forbidden and said & PERSON_WORDS) or (
        "a" in forbidden and said & ANIMAL_WORDS
    )
    return bool(said & required) and not invented
