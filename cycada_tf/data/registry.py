"""Dataset names -> what they are (classes, image size, splits) and how their TFRecords are found or made.

One place for each fact: the experiments, tools and tests look datasets up here.
"""

import dataclasses
import os
from typing import Callable, Optional

from cycada_tf.data import public, schema, tfrecord
from cycada_tf.data.sources import cityscapes, folder, gta5, road_scenes, segmentation, synthia, tfds_source

DIGIT_CLASSES = tuple(str(d) for d in range(10))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    classes: tuple
    image_size: int           # side of the stored images (records may be resized by the pipeline)
    channels: int             # channels of the stored images
    splits: tuple = ("train", "test")
    # Builds the records in place when the data ships with the project (embedded domains); None for
    # datasets a user must prepare from downloaded files with `prepare_hint`.
    build: Optional[Callable[[str], dict]] = None
    prepare_hint: str = ""
    # Segmentation datasets: records hold a label map of train ids (classes), this value meaning "not
    # evaluated"; None for classification datasets (one class id per record).
    ignore_label: Optional[int] = None
    # False for a target domain without labels (folder:<flat folder of images>): its records carry label -1;
    # runs report label-free criteria for it instead of accuracy (cycada_tf/reporting/unlabelled_target.py).
    labelled: bool = True
    # What a run must say of the data in its log and report (a test split the project made, and how).
    note: str = ""

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def segmentation(self):
        return self.ignore_label is not None


_REGISTRY = {}


def register(spec):
    _REGISTRY[spec.name] = spec
    return spec


def names():
    return sorted(_REGISTRY)


def get(name):
    if name not in _REGISTRY and tfds_source.is_tfds(name):
        register(_tfds_spec(name))
    if name not in _REGISTRY and folder.is_folder(name):
        register(_folder_spec(name))
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset '{name}'; known: {', '.join(names())}; or {folder.PREFIX}<path>, a folder "
                         f"of your own images (docs/data.md), or {tfds_source.PREFIX}<name>, a classification "
                         f"dataset prepared by tensorflow-datasets")
    return _REGISTRY[name]


def dataset_dir(data_dir, name):
    if folder.is_folder(name):
        return folder.records_dir(data_dir, name)
    return os.path.join(data_dir, name)


def ensure(name, data_dir, download=False):
    """Return the directory of `name`'s TFRecords, building embedded datasets on first use.

    A public digit dataset (public.py) that is not prepared is prepared from the raw cache <data_dir>/raw,
    its missing files downloaded first when `download`. Raises tfrecord.DataError naming the preparation
    command (and, for a public dataset, the URLs and file names to place by hand) when it cannot be.
    """
    spec = get(name)
    directory = dataset_dir(data_dir, name)
    if spec.build is not None:
        spec.build(directory)
    elif tfrecord.read_manifest(directory) is None:
        if name in public.FILES:
            public.ensure(name, data_dir, directory, spec.prepare_hint,
                          {"image_size": spec.image_size, "channels": spec.channels}, download)
            return directory
        raise tfrecord.DataError(f"dataset '{name}' is not prepared in {directory}. {spec.prepare_hint}")
    return directory


def _embedded(name):
    def build(directory):
        from cycada_tf.data.sources import embedded
        inputs = embedded.fingerprint(name)
        if not tfrecord.is_current(directory, inputs):
            tfrecord.write_dataset(directory, embedded.examples(name), inputs,
                                   info={"image_size": 32, "embedded": True})
        return tfrecord.read_manifest(directory)
    return build


register(DatasetSpec("uci", DIGIT_CLASSES, 32, 1, build=_embedded("uci")))
register(DatasetSpec("uci_m", DIGIT_CLASSES, 32, 3, build=_embedded("uci_m")))
register(DatasetSpec("fonts", DIGIT_CLASSES, 32, 1, build=_embedded("fonts")))
register(DatasetSpec("uci_s", DIGIT_CLASSES, 32, 3, build=_embedded("uci_s")))


# Digit datasets prepared from the files users download (tools/prepare_data.py), stored at native size.
def _prepare_hint(name, raw_files):
    return (f"Run: python tools/prepare_data.py --dataset={name} --raw_dir=<dir with {raw_files}> "
            "--data_dir=<data_dir>")


register(DatasetSpec("mnist", DIGIT_CLASSES, 28, 1, prepare_hint=_prepare_hint(
    "mnist", "the IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz")))
register(DatasetSpec("usps", DIGIT_CLASSES, 16, 1, prepare_hint=_prepare_hint(
    "usps", "zip.train.gz and zip.test.gz, or usps.h5")))
register(DatasetSpec("svhn", DIGIT_CLASSES, 32, 3, prepare_hint=_prepare_hint(
    "svhn", "train_32x32.mat and test_32x32.mat")))
register(DatasetSpec("mnist_m", DIGIT_CLASSES, 28, 3, prepare_hint=_prepare_hint(
    "mnist_m", "mnist_m_train/, mnist_m_test/ and their labels .txt (or --build_mnist_m with the MNIST files "
    "and BSR_bsds500.tgz)")))


# Segmentation datasets prepared from their official layouts (tools/prepare_data.py --width), stored resized
# to the paper's width by default; image_size is that width (heights vary with each image's aspect ratio).
def _segmentation(name, source, prepare_hint):
    pages = public.SEGMENTATION_PAGES[source.__name__.rsplit(".", 1)[-1]]
    return DatasetSpec(name, source.CLASSES, segmentation.PAPER_WIDTH, 3, splits=source.SPLITS,
                       prepare_hint=f"{prepare_hint} (--raw_dir may hold the archives as downloaded). Get them "
                                    f"from {pages}", ignore_label=schema.IGNORE_LABEL)


register(_segmentation("gta5", gta5, gta5.PREPARE_HINT))
register(_segmentation("cityscapes", cityscapes, cityscapes.PREPARE_HINT))
for _name in synthia.SEASONS:
    register(_segmentation(_name, synthia, synthia.prepare_hint(_name)))


# The embedded road-scene domains (road_scenes.py): rendered on first use, one label set, 64x128 images.
def _road_scenes(name):
    def build(directory):
        inputs = road_scenes.fingerprint(name)
        if not tfrecord.is_current(directory, inputs):
            tfrecord.write_dataset(directory, road_scenes.examples(name), inputs,
                                   info={"width": road_scenes.WIDTH, "height": road_scenes.HEIGHT,
                                         "classes": list(road_scenes.CLASSES),
                                         "ignore_label": schema.IGNORE_LABEL, "embedded": True})
        return tfrecord.read_manifest(directory)
    return DatasetSpec(name, road_scenes.CLASSES, road_scenes.WIDTH, 3, build=build,
                       ignore_label=schema.IGNORE_LABEL)


for _name in road_scenes.DOMAINS:
    register(_road_scenes(_name))


def _tfds_spec(name):
    """A `tfds:<name>` dataset: read in place from tensorflow-datasets' files, never converted.

    Its `build` makes nothing: it checks that tfds has the data, so `ensure` fails early with the command
    that prepares it. ensure() passes os.path.join(data_dir, name), from which data_dir is recovered.
    """
    def build(directory):
        tfds_source.check(name, directory[:len(directory) - len(name)] or ".")

    return DatasetSpec(name, build=build, prepare_hint=tfds_source.prepare_hint(name),
                       **tfds_source.spec_fields(name))


def _folder_spec(name):
    """A `folder:<path>` dataset (sources/folder.py): its classes read from the folder now, its records
    converted once by `build` (again when a file changes)."""
    kind = folder.kind(name)
    if kind == "segmentation":
        source = folder.SegmentationFolder(name)

        def build(directory):
            layout = source.layout()
            inputs = folder.fingerprint([p for pairs in layout.splits.values() for pair in pairs
                                         for p in (pair.image, pair.label)], kind)
            if not tfrecord.is_current(directory, inputs):
                tfrecord.write_dataset(directory, segmentation.examples(source, layout, 0), inputs,
                                       info={"width": None, "classes": list(source.classes),
                                             "colors": source.colors, "ignore_label": schema.IGNORE_LABEL,
                                             "folder": source.path})
        return DatasetSpec(name, source.classes, 0, 3, build=build, ignore_label=schema.IGNORE_LABEL)
    note = ""
    if kind == "classification":
        splits, classes = folder.classification_items(name)
        note = folder.holdout_note(name)
    else:
        splits, classes = folder.unlabelled_items(name), ()
    paths = [path for items in splits.values() for path, _ in items]
    channels = folder.channels(paths)
    size = folder.image_side(paths[0])

    def build(directory):
        inputs = folder.fingerprint(paths, f"{kind}:{channels}")
        if not tfrecord.is_current(directory, inputs):
            tfrecord.write_dataset(directory, folder.classification_examples(splits, channels, folder.path_of(name)),
                                   inputs, info={"image_size": size, "channels": channels, "classes": list(classes),
                                                 "labelled": kind != "unlabelled", "folder": folder.path_of(name)})
    return DatasetSpec(name, classes, size, channels, build=build, labelled=kind != "unlabelled", note=note)
