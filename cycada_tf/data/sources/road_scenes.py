"""The embedded road-scene domains: procedurally rendered street scenes with label maps (no download).

roads_game    flat "game" colours, clean edges, saturated palette.
roads_camera  the same kind of scenes seen through a "camera": other surface colours (pale sky, light
              asphalt, grey sidewalks, olive foliage), textures (asphalt grain, windows, leaves), a colour
              cast and brightness per image, desaturation, blur and sensor noise.

Both domains draw their layouts from one distribution (horizon, road, sidewalks, buildings, trees, poles,
cars, people, at the same sizes and places), so what separates them is appearance only: the shift pixel-level
adaptation is for. The label set is 8 of the 19 Cityscapes train classes, under their Cityscapes names and
colours (CLASSES); label maps hold indices into CLASSES, 255 nowhere (every pixel is labelled).

Every image is a function of (domain, split, index) alone, from its own seeded random stream, so the
datasets are deterministic and the train and test splits of a domain are disjoint draws; the source and
target domains never share a layout either.
"""

import hashlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cycada_tf.data import schema
from cycada_tf.data.sources import cityscapes

# 8 of the Cityscapes train classes (by name; index = train id of these domains).
CLASSES = ("road", "sidewalk", "building", "pole", "vegetation", "sky", "person", "car")
ROAD, SIDEWALK, BUILDING, POLE, VEGETATION, SKY, PERSON, CAR = range(len(CLASSES))
CITYSCAPES_TRAIN_IDS = tuple(cityscapes.CLASSES.index(name) for name in CLASSES)  # (0, 1, 2, 5, 8, 10, 11, 13)
HEIGHT, WIDTH = 64, 128
SPLIT_SIZES = {"train": 400, "test": 100}
DOMAINS = ("roads_game", "roads_camera")
SEED = 20180710
VERSION = "1"  # bump when the rendering changes: prepared copies are then rebuilt

# Base surface colours (RGB) of each class in each domain; cars take one of CAR_COLOURS per car.
GAME_COLOURS = {ROAD: (70, 70, 80), SIDEWALK: (235, 120, 200), BUILDING: (200, 150, 90), POLE: (250, 220, 0),
                VEGETATION: (40, 200, 40), SKY: (60, 150, 255), PERSON: (230, 20, 40)}
CAMERA_COLOURS = {ROAD: (120, 115, 115), SIDEWALK: (175, 140, 160), BUILDING: (150, 125, 105),
                  POLE: (150, 140, 70), VEGETATION: (75, 125, 60), SKY: (160, 190, 225), PERSON: (150, 50, 60)}
GAME_CAR_COLOURS = ((0, 0, 230), (20, 20, 180), (0, 160, 230), (120, 0, 200))
CAMERA_CAR_COLOURS = ((40, 50, 140), (60, 60, 120), (50, 110, 150), (90, 60, 130))


def _layout(rng):
    """A label map (HEIGHT, WIDTH) uint8 and the instance draws (for per-object colours): [(mask, class)]."""
    label = Image.new("L", (WIDTH, HEIGHT), SKY)
    draw = ImageDraw.Draw(label)
    horizon = int(HEIGHT * rng.uniform(0.38, 0.5))
    vanish = int(WIDTH * rng.uniform(0.35, 0.65))
    # Buildings and tree blocks along the skyline, with gaps of sky.
    x = -rng.randint(0, 10)
    while x < WIDTH:
        width = rng.randint(10, 32)
        kind = rng.choice(["building", "building", "trees", "gap"])
        if kind == "building":
            top = rng.randint(2, max(3, horizon - 6))
            draw.rectangle([x, top, x + width, horizon + 2], fill=BUILDING)
        elif kind == "trees":
            top = rng.randint(horizon // 3, max(horizon // 3 + 1, horizon - 4))
            draw.ellipse([x - 3, top, x + width + 3, horizon + 6], fill=VEGETATION)
        x += width
    # Ground: sidewalk everywhere below the horizon, the road a trapezoid from the vanishing point.
    draw.rectangle([0, horizon, WIDTH, HEIGHT], fill=SIDEWALK)
    left, right = int(WIDTH * rng.uniform(-0.2, 0.2)), int(WIDTH * rng.uniform(0.8, 1.2))
    draw.polygon([(vanish - 3, horizon), (vanish + 3, horizon), (right, HEIGHT), (left, HEIGHT)], fill=ROAD)
    instances = []

    def depth_scale(y):  # objects grow towards the bottom of the image
        return (y - horizon + 4) / (HEIGHT - horizon + 4)

    def road_edges(y):
        t = (y - horizon) / (HEIGHT - horizon)
        return vanish - 3 + t * (left - vanish + 3), vanish + 3 + t * (right - vanish - 3)

    objects = []
    for _ in range(rng.randint(0, 4)):
        y = rng.randint(horizon + 4, HEIGHT + 4)
        lo, hi = road_edges(min(y, HEIGHT))
        objects.append(("car", y, rng.uniform(lo, hi)))
    for _ in range(rng.randint(0, 4)):
        y = rng.randint(horizon + 3, HEIGHT)
        lo, hi = road_edges(y)
        side = rng.randint(2)
        x = rng.uniform(0, max(1, lo)) if side == 0 else rng.uniform(min(hi, WIDTH - 1), WIDTH)
        objects.append(("person", y, x))
    for _ in range(rng.randint(0, 3)):
        y = rng.randint(horizon + 2, HEIGHT)
        lo, hi = road_edges(y)
        objects.append(("pole", y, lo - 2 if rng.randint(2) == 0 else hi + 2))
    for kind, y, cx in sorted(objects, key=lambda o: o[1]):  # far objects first: near ones occlude them
        s = depth_scale(y)
        mask = Image.new("L", (WIDTH, HEIGHT), 0)
        m = ImageDraw.Draw(mask)
        if kind == "car":
            w, h = 10 + 34 * s, 5 + 15 * s
            m.rectangle([cx - w / 2, y - h, cx + w / 2, y - 0.25 * h], fill=1)
            m.rectangle([cx - 0.3 * w, y - 1.5 * h, cx + 0.3 * w, y - h], fill=1)
            m.ellipse([cx - 0.45 * w, y - 0.5 * h, cx - 0.15 * w, y], fill=1)
            m.ellipse([cx + 0.15 * w, y - 0.5 * h, cx + 0.45 * w, y], fill=1)
            cls = CAR
        elif kind == "person":
            h = 6 + 20 * s
            m.ellipse([cx - 0.13 * h, y - 0.8 * h, cx + 0.13 * h, y], fill=1)
            m.ellipse([cx - 0.09 * h, y - h, cx + 0.09 * h, y - 0.8 * h], fill=1)
            cls = PERSON
        else:
            h = 14 + 30 * s
            m.rectangle([cx, y - h, cx + max(1, int(2 * s)), y], fill=1)
            cls = POLE
        mask = np.asarray(mask, bool)
        instances.append((mask, cls))
    label = np.array(label, np.uint8)
    for mask, cls in instances:
        label[mask] = cls
    return label, instances, horizon


def _colour_surfaces(label, instances, colours, car_colours, rng, jitter):
    image = np.zeros(label.shape + (3,), np.float32)
    for cls, rgb in colours.items():
        image[label == cls] = np.clip(np.array(rgb) + rng.uniform(-jitter, jitter, 3), 0, 255)
    for mask, cls in instances:
        if cls == CAR:
            rgb = np.array(car_colours[rng.randint(len(car_colours))], np.float32)
            image[mask & (label == CAR)] = np.clip(rgb + rng.uniform(-jitter, jitter, 3), 0, 255)
    return image


def render_game(rng):
    """(image uint8 (H, W, 3), label uint8 (H, W)) in the game look: flat colours, clean edges."""
    label, instances, _ = _layout(rng)
    image = _colour_surfaces(label, instances, GAME_COLOURS, GAME_CAR_COLOURS, rng, jitter=12)
    return image.astype(np.uint8), label


def render_camera(rng):
    """(image, label) in the camera look: other colours, textures, colour cast, desaturation, blur, noise."""
    label, instances, horizon = _layout(rng)
    image = _colour_surfaces(label, instances, CAMERA_COLOURS, CAMERA_CAR_COLOURS, rng, jitter=10)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    # Textures: asphalt grain, sidewalk slabs, building windows, leaves, a bright sky towards the horizon.
    grain = rng.normal(0, 1, (HEIGHT, WIDTH))[..., None]
    image += np.where((label == ROAD)[..., None], 10 * grain, 0)
    slabs = ((cols // 6 + rows // 3) % 2)[..., None]
    image += np.where((label == SIDEWALK)[..., None], 12 * slabs - 6, 0)
    windows = (((rows % 6) < 3) & ((cols % 5) < 2))[..., None]
    image += np.where((label == BUILDING)[..., None] & windows, -45, 0)
    leaves = rng.normal(0, 1, (HEIGHT // 2, WIDTH // 2)).repeat(2, 0).repeat(2, 1)[..., None]
    image += np.where((label == VEGETATION)[..., None], 22 * leaves, 0)
    image += np.where((label == SKY)[..., None], 25.0 * (rows / max(1, horizon))[..., None] - 10, 0)
    # Lighting: a vertical gradient, a brightness and a colour cast per image, desaturation.
    image *= (1.0 - 0.25 * rows / HEIGHT)[..., None] * rng.uniform(0.8, 1.15)
    image *= np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.12, 0.12, 3) + np.array([0.06, 0.02, -0.08])
    grey = image.mean(axis=-1, keepdims=True)
    image = grey + rng.uniform(0.4, 0.7) * (image - grey)
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.0)))
    image = np.asarray(picture, np.float32) + rng.normal(0, 6, (HEIGHT, WIDTH, 3))
    return np.clip(image, 0, 255).astype(np.uint8), label


RENDER = {"roads_game": render_game, "roads_camera": render_camera}


def _rng(name, split, index):
    """The random stream of one image: disjoint (domain, split, index) give independent draws."""
    words = np.frombuffer(hashlib.sha256(f"{SEED}:{name}:{split}:{index}".encode()).digest()[:16], np.uint32)
    return np.random.RandomState(words)


def render(name, split, index):
    if name not in RENDER:
        raise ValueError(f"unknown road-scene domain '{name}'; known: {', '.join(DOMAINS)}")
    return RENDER[name](_rng(name, split, index))


def examples(name):
    """{split: generator of tf.train.Example} of one domain, in the segmentation schema (label map PNG)."""
    def split_examples(split):
        for index in range(SPLIT_SIZES[split]):
            image, label = render(name, split, index)
            yield schema.make_example(image, label_map=label, key=f"{name}/{split}/{index:05d}")
    return {split: split_examples(split) for split in SPLIT_SIZES}


def fingerprint(name):
    return {"source": f"road_scenes:{name}", "version": VERSION, "seed": SEED, "sizes": SPLIT_SIZES,
            "shape": [HEIGHT, WIDTH]}
