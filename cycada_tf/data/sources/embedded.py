"""The embedded digit domains, made from files that scikit-learn and matplotlib ship (no download).

uci    the 1,797 UCI optdigits (8x8, scikit-learn), upsampled and padded to 32x32 grey.
uci_m  the MNIST-M construction (Ganin & Lempitsky 2015) over the other half of uci: |crop - digit| per
       channel, crops of scikit-learn's two sample photographs.
fonts  printed digits rendered from matplotlib's TrueType fonts, random size, offset and rotation.
uci_s  the target half of uci in a house-number look (cf. SVHN): a coloured digit between the cut-off edges of
       two neighbours on a background of another colour, blurred, with noise. Built after the defaults were
       chosen, as the pair `uci -> uci_s` that nothing is tuned on (docs/paper_departures.md).

Splits are fixed: a seeded permutation gives uci's train half (the source half) and a disjoint target half,
which uci_m divides into its own train and test digits; uci's test split is the target half's test digits,
so `fonts -> uci` is evaluated on digits no training split of uci contains.
"""

import glob
import hashlib
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from cycada_tf.data import schema

SPLIT_SEED = 20180710          # fixes which digits are source, target-train and target-test
SOURCE_HALF = 900              # digits in uci/train
TARGET_TRAIN = 600             # digits of the other half in uci_m/train (the rest are test digits)
UCI_M_BLENDS_PER_TRAIN_DIGIT = 3   # each target training digit blended with this many crops
UCI_S_RENDERS_PER_TRAIN_DIGIT = 3  # each target training digit rendered this many times in uci_s
STREET_CONTRAST = 0.25             # least luminance difference of uci_s's digit and background colours
FONTS_TRAIN, FONTS_TEST = 2000, 500
IMAGE_SIZE = 32
DIGIT_SIZE = 28                # uci digits are upsampled to this and padded to IMAGE_SIZE, like MNIST
VERSION = "1"                  # bump when the construction changes: prepared copies are then rebuilt

# Fonts whose code points 0x30-0x39 are not digits, or that lack them.
_NOT_DIGIT_FONTS = ("cmex10", "cmsy10", "STIXSiz", "LastResort", "Display")


def _uci_arrays():
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).astype(np.uint8)
    up = np.stack([np.asarray(Image.fromarray(im).resize((DIGIT_SIZE, DIGIT_SIZE), Image.BICUBIC))
                   for im in images])
    pad = (IMAGE_SIZE - DIGIT_SIZE) // 2
    up = np.pad(up, ((0, 0), (pad, IMAGE_SIZE - DIGIT_SIZE - pad), (pad, IMAGE_SIZE - DIGIT_SIZE - pad)))
    return up, digits.target.astype(np.int64)


def _index_split():
    order = np.random.RandomState(SPLIT_SEED).permutation(1797)
    source, target = order[:SOURCE_HALF], order[SOURCE_HALF:]
    return source, target[:TARGET_TRAIN], target[TARGET_TRAIN:]


def _photos():
    from sklearn.datasets import load_sample_images
    return [np.asarray(im, np.float32) / 255.0 for im in load_sample_images().images]


def blend(digit, photos, rng):
    """MNIST-M: |crop - digit| per channel, digit and crop in [0, 1]; a random crop of the digit's size from
    a random photo (float in [0, 1], or uint8). sources/mnist_m.py builds MNIST-M itself with it."""
    photo = photos[rng.randint(len(photos))]
    height, width = digit.shape[:2]
    y = rng.randint(photo.shape[0] - height + 1)
    x = rng.randint(photo.shape[1] - width + 1)
    crop = photo[y:y + height, x:x + width].astype(np.float32)
    if photo.dtype == np.uint8:
        crop /= 255.0
    out = np.abs(crop - digit[..., None].astype(np.float32) / 255.0)
    return np.round(out * 255.0).astype(np.uint8)


def uci_splits():
    images, labels = _uci_arrays()
    source, _, target_test = _index_split()
    return {"train": [(images[i], labels[i], f"uci:{i}") for i in source],
            "test": [(images[i], labels[i], f"uci:{i}") for i in target_test]}


def uci_m_splits():
    images, labels = _uci_arrays()
    _, target_train, target_test = _index_split()
    photos = _photos()
    train_rng, test_rng = np.random.RandomState(SPLIT_SEED + 1), np.random.RandomState(SPLIT_SEED + 2)
    train = [(blend(images[i], photos, train_rng), labels[i], f"uci:{i}/crop{k}")
             for k in range(UCI_M_BLENDS_PER_TRAIN_DIGIT) for i in target_train]
    test = [(blend(images[i], photos, test_rng), labels[i], f"uci:{i}") for i in target_test]
    return {"train": train, "test": test}


def digit_fonts():
    import matplotlib
    from matplotlib import ft2font
    paths = sorted(glob.glob(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "*.ttf")))
    usable = []
    for path in paths:
        if any(tag in os.path.basename(path) for tag in _NOT_DIGIT_FONTS):
            continue
        charmap = ft2font.FT2Font(path).get_charmap()
        if all(ord(str(d)) in charmap for d in range(10)):
            usable.append(path)
    return usable


def _render(font_path, digit, rng):
    size = rng.randint(18, 29)
    font = ImageFont.truetype(font_path, size)
    canvas = Image.new("L", (64, 64), 0)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font)
    draw.text((32 - (left + right) / 2, 32 - (top + bottom) / 2), str(digit), fill=255, font=font)
    canvas = canvas.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR)
    dx, dy = rng.randint(-3, 4), rng.randint(-3, 4)
    box = (16 + dx, 16 + dy, 16 + dx + IMAGE_SIZE, 16 + dy + IMAGE_SIZE)
    return np.asarray(canvas.crop(box), np.uint8)


def fonts_splits():
    fonts = digit_fonts()
    rng = np.random.RandomState(SPLIT_SEED + 3)
    out = {}
    for split, count in (("train", FONTS_TRAIN), ("test", FONTS_TEST)):
        items = []
        for i in range(count):
            digit, font = i % 10, fonts[rng.randint(len(fonts))]
            items.append((_render(font, digit, rng), digit, f"{os.path.basename(font)}:{split}{i}"))
        out[split] = items
    return out


def _street(digit, neighbours, rng):
    """A house-number look (cf. SVHN): the digit and the cut-off edges of its two neighbours in one colour on
    a background of another (luminances at least STREET_CONTRAST apart), blurred, with sensor noise."""
    mask = digit.astype(np.float32) / 255.0
    for neighbour, side in zip(neighbours, (-1, 1)):
        shifted = np.roll(neighbour.astype(np.float32) / 255.0, side * rng.randint(19, 25), axis=1)
        cut = np.zeros_like(shifted)
        keep = slice(0, 12) if side < 0 else slice(IMAGE_SIZE - 12, IMAGE_SIZE)  # only the edge it lands on
        cut[:, keep] = shifted[:, keep]
        mask = np.maximum(mask, cut)
    luminance = np.array([0.299, 0.587, 0.114])
    while True:
        fg, bg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(float(fg @ luminance - bg @ luminance)) >= STREET_CONTRAST:
            break
    image = bg + (fg - bg) * mask[..., None]
    blurred = Image.fromarray(np.round(image * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    noisy = np.asarray(blurred, np.float32) / 255.0 + rng.normal(0, rng.uniform(0.02, 0.08), image.shape)
    return np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8)


def uci_s_splits():
    """The target half of uci in the house-number look (_street); the train split renders each training digit
    UCI_S_RENDERS_PER_TRAIN_DIGIT times, with neighbours drawn from the same split (test digits appear only
    in the test split)."""
    images, labels = _uci_arrays()
    _, target_train, target_test = _index_split()
    out = {}
    for split, indices, copies, seed in (("train", target_train, UCI_S_RENDERS_PER_TRAIN_DIGIT, SPLIT_SEED + 4),
                                         ("test", target_test, 1, SPLIT_SEED + 5)):
        rng = np.random.RandomState(seed)
        out[split] = [(_street(images[i], images[rng.choice(indices, 2)], rng), labels[i], f"uci:{i}/render{k}")
                      for k in range(copies) for i in indices]
    return out


MAKERS = {"uci": uci_splits, "uci_m": uci_m_splits, "fonts": fonts_splits, "uci_s": uci_s_splits}


def fingerprint(name):
    """Identifies the construction and its inputs, so a changed library or recipe rebuilds the records."""
    import matplotlib
    import sklearn
    text = f"{name}:{VERSION}:{SPLIT_SEED}:sklearn={sklearn.__version__}:matplotlib={matplotlib.__version__}"
    return {"recipe": hashlib.sha256(text.encode()).hexdigest()[:16], "description": text}


def examples(name):
    """{split: generator of tf.train.Example} for one embedded domain."""
    splits = MAKERS[name]()
    return {split: (schema.make_example(image, label, key=key) for image, label, key in items)
            for split, items in splits.items()}
