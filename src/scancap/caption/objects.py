"""The object words a caption can say, grouped by the object they name.

A caption that names an object not in the photo is the error a person searching an archive
trusts most ("a car" on a glass tower). Every concrete noun the decoder can say belongs to one
group here; the group is the unit of evidence and of measurement:

- the hand labels list, per photo, the groups that are visible (`benchmarks/labels/`);
- CHAIR counts a caption's mention of a group the labels do not list as invented;
- grounding lets the decoder say a group's words only where its evidence source supports it:
  the COCO detector's class (`scancap.caption.detector`), or for groups no detector knows
  (ramp, snow, fence), a rule measured on labelled photos.

Each line of OBJECT_TABLE reads `group [coco classes]: words`, the classes separated by `;`
(an indented line carries on the words). The words are the decoder's own (its vocabulary,
`vocabulary.json`); people and animals are PERSON_WORDS and ANIMAL_WORDS in
`scancap.caption.grounding`, grouped here as `person` and by animal. Words that are both a
noun and something else ("orange", "glass", "mouse") are left out where the other sense is the
common one in captions.
"""

from __future__ import annotations

from dataclasses import dataclass

# COCO's 80 detection classes in the order of the detector's outputs.
COCO_CLASSES = (  # noqa: SIM905 (a class list reads better as text)
    "person, bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light, "
    "fire hydrant, stop sign, parking meter, bench, bird, cat, dog, horse, sheep, cow, elephant, "
    "bear, zebra, giraffe, backpack, umbrella, handbag, tie, suitcase, frisbee, skis, snowboard, "
    "sports ball, kite, baseball bat, baseball glove, skateboard, surfboard, tennis racket, "
    "bottle, wine glass, cup, fork, knife, spoon, bowl, banana, apple, sandwich, orange, "
    "broccoli, carrot, hot dog, pizza, donut, cake, chair, couch, potted plant, bed, "
    "dining table, toilet, tv, laptop, mouse, remote, keyboard, cell phone, microwave, oven, "
    "toaster, sink, refrigerator, book, clock, vase, scissors, teddy bear, hair drier, toothbrush"
).split(", ")

OBJECT_TABLE = """
person [person]: man men woman women boy boys girl girls child children person people player
    players kid kids baby babies toddler toddlers guy guys lady ladies gentleman adult adults
    teenager teenagers teen infant newborn someone crowd crowds couple couples family team
    skateboarder skateboarders snowboarder snowboarders skier skiers surfer surfers biker bikers
    rider riders climber climbers hiker hikers cyclist cyclists bicyclist bicyclists swimmer
    swimmers runner runners dancer dancers worker workers spectators audience bride groom
    policeman police officer soldier fisherman photographer referee goalie jockey wrestler
    athlete clown skater driver musicians students pedestrians passengers
bicycle [bicycle]: bike bikes bicycle bicycles bmx tricycle tricycles
car [car; truck; bus]: car cars jeep jeeps suv van limousine vehicle vehicles
motorcycle [motorcycle]: motorcycle motorcycles motorbike motorbikes scooter scooters atv
airplane [airplane]: plane airplane jet helicopter
bus [bus]: bus
train [train]: train trains subway
truck [truck]: truck trucks firetruck tractor ambulance
boat [boat]: boat boats kayak kayaks canoe canoes raft rafts sailboat ship rowboat
bench [bench]: bench benches
bird [bird]: bird birds duck ducks pigeons seagull seagulls swan swans geese pelican chicken
    chickens turkeys
cat [cat]: cat cats
dog [dog]: dog dogs puppy puppies greyhound greyhounds poodle poodles terrier terriers collie
    retriever labrador dachshund beagle husky pitbull doberman dalmatian hound shepherd
horse [horse]: horse horses pony
sheep [sheep]: sheep lambs goat goats
cow [cow]: cow cows bull bulls
elephant [elephant]: elephant
bear [bear]: bear
backpack [backpack]: backpack backpacks
umbrella [umbrella]: umbrella umbrellas
handbag [handbag; backpack; suitcase]: bag bags purse purses handbag
suitcase [suitcase]: luggage
frisbee [frisbee]: frisbee disc
skis [skis]: ski skis
snowboard [snowboard]: snowboard snowboards
ball [sports ball]: ball balls soccer basketball football volleyball
kite [kite]: kite kites
baseball bat [baseball bat]: bat
skateboard [skateboard]: skateboard skateboards
surfboard [surfboard; snowboard; skateboard]: surfboard board
racket [tennis racket]: racket racquet
bottle [bottle]: bottle bottles
cup [cup]: cup cups mug
bowl [bowl]: bowl bowls
food [banana; apple; sandwich; orange; broccoli; carrot; hot dog; pizza; donut; cake]: food
    pizza cake fruit apple apples meal dinner
chair [chair; couch; bench]: chair chairs seat seats
couch [couch]: couch sofa
bed [bed]: bed
table [dining table]: table tables desk
toilet [toilet]: toilet
tv [tv]: tv screen monitor
laptop [laptop]: laptop computer
phone [cell phone]: phone cellphone cellphones
book [book]: book magazine newspaper
other animal: animal animals camel camels deer fish monkey tiger squirrel rabbit bunny snake
    frog dolphin seal crocodile insect bee bug
camera: camera cameras
guitar: guitar guitars violin drums piano instrument instruments microphone
hat: hat hats cap helmet helmets
ramp: ramp ramps
fence: fence railing rail fencing
bridge: bridge
stairs: stairs steps staircase stair
wall: wall walls
sign: sign signs banner flag flags billboard poster
toy: toy toys doll balloon balloons
rope: rope ropes
stick: stick sticks pole poles
swing: swing swings slide trampoline playground
tent: tent tents
sled: sled sleds
fountain: fountain fountains
statue: statue statues sculpture monument
building: building buildings house houses church skyscraper store shop restaurant barn
street: street streets road sidewalk highway
snow: snow snowy snow-covered
water: water pool lake river ocean sea stream creek pond waves wave waterfall
beach: beach sand sandy shore shoreline
grass: grass grassy field lawn yard meadow
tree: tree trees forest woods
rock: rock rocks rocky cliff boulder
mountain: mountain mountains hill hills mountainside hillside
flower: flower flowers tulips dandelion
"""


@dataclass(frozen=True)
class ObjectGroup:
    """One object a caption can name: its words and the COCO classes that stand for it."""

    name: str
    coco: tuple[str, ...]  # the COCO classes that stand for it (any of them), or none
    words: frozenset[str]


def joined_lines(table: str) -> list[str]:
    """The table's lines, each indented line joined to the one before it."""
    lines: list[str] = []
    for line in filter(str.strip, table.splitlines()):
        if line[0].isspace() and lines:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line.strip())
    return lines


def parse_object_table(table: str = OBJECT_TABLE) -> dict[str, ObjectGroup]:
    """Group name -> ObjectGroup, from `group [coco class]: words` lines."""
    groups: dict[str, ObjectGroup] = {}
    for line in joined_lines(table):
        head, _, words = line.partition(":")
        name, _, classes = head.partition("[")
        coco = tuple(filter(None, (c.strip() for c in classes.rstrip("] ").split(";"))))
        unknown = [c for c in coco if c not in COCO_CLASSES]
        if unknown:
            raise ValueError(f"object group {name.strip()!r}: {unknown} are no COCO classes")
        groups[name.strip()] = ObjectGroup(name.strip(), coco, frozenset(words.split()))
    return groups


OBJECT_GROUPS = parse_object_table()
WORD_GROUP = {word: g.name for g in OBJECT_GROUPS.values() for word in g.words}


def mentioned_groups(caption: str) -> list[str]:
    """The object groups a caption names, in the order it first names them ("a dog runs on the
    grass" -> dog, grass)."""
    groups: list[str] = []
    for token in caption.lower().replace(".", " ").replace(",", " ").split():
        group = WORD_GROUP.get(token)
        if group is not None and group not in groups:
            groups.append(group)
    return groups
