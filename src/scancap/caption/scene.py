"""A caption built from evidence, for the photos the decoder cannot describe.

Where grounding forbids what the decoder wanted to say, its best remaining caption can be a
poor one ("a black and white is standing in the water"). Neural Baby Talk (Lu et al. 2018)
fills a sentence template's slots with detected objects; here the template is the photo's
likeliest ImageNet concept, where it is sure, and the COCO detector's objects, counted:
"a lighthouse", "a palace with three people", "two cars and a bus". It says less than a fluent
caption, and nothing the evidence does not support.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from scancap.caption.detector import Detection, plural

NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
                9: "nine"}  # fmt: skip
MAX_THINGS = 3  # object kinds named, most frequent first


def with_article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def counted(label: str, count: int) -> str:
    """ "a car", "two cars", "many people"."""
    if count == 1:
        return with_article(label)
    return f"{NUMBER_WORDS.get(count, 'many')} {plural(label)}"


def listed(phrases: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(phrases) < 2:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def scene_sentence(scene: str | None, objects: Sequence[Detection]) -> str | None:
    """The photo as its evidence says it: its scene concept (None where no concept is sure)
    with its objects counted; None where there is neither."""
    counts = Counter(item.label for item in objects if item.label != scene)
    things = [counted(label, n) for label, n in
              sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_THINGS]]  # fmt: skip
    if scene and things:
        return f"{with_article(scene)} with {listed(things)}"
    if scene:
        return with_article(scene)
    return listed(things) or None
