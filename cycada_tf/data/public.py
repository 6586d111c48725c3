"""Where the public digit datasets come from, and how a missing one is fetched and prepared on first use.

Checksums: MNIST and SVHN's SHA-256 and sizes are those tensorflow-datasets publishes for the same official
files (tensorflow_datasets/url_checksums/mnist.txt, datasets/svhn_cropped/checksums.tsv; a test compares
them). BSDS500's archive has a published size, 70763455 bytes (tensorpack's loader,
tensorpack/dataflow/dataset/bsds500.py, DATA_SIZE), which catches a short download, but no SHA-256 that this
project could find from its publisher or verify offline; USPS's ESL files have neither. Their SHA-256 entries
say None: a download then prints the SHA-256 it got, and a user pins one through CYCADA_DATA_CHECKSUMS
(docs/data.md). Environment:
  CYCADA_DATA_MIRRORS    comma-separated base URLs tried instead of the official ones, each serving
                         <base>/<dataset>/<file name> (a local mirror; the tests' server on 127.0.0.1)
  CYCADA_DATA_CHECKSUMS  a `sha256sum`-format file ("<hex>  <file name>" a line) whose entries replace
                         the table's
"""

import collections
import os

from cycada_tf.data import download, tfrecord

MIRRORS_ENV, CHECKSUMS_ENV = "CYCADA_DATA_MIRRORS", "CYCADA_DATA_CHECKSUMS"
RAW_SUBDIR = "raw"  # <data_dir>/raw/: the raw cache, every public dataset's files side by side

Remote = collections.namedtuple("Remote", "name urls sha256 size")

_MNIST_BASES = ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "http://yann.lecun.com/exdb/mnist/")
MNIST = tuple(Remote(name, tuple(base + name for base in _MNIST_BASES), sha, size) for name, sha, size in (
    ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542)))
SVHN = tuple(Remote(name, ("http://ufldl.stanford.edu/housenumbers/" + name,), sha, size) for name, sha, size in (
    ("train_32x32.mat", "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8", 182040794),
    ("test_32x32.mat", "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b", 64275384)))
# The Elements of Statistical Learning's copy of USPS (the ESL text format usps.py reads); no published SHA-256.
USPS = tuple(Remote(name, tuple(base + name for base in ("https://hastie.su.domains/ElemStatLearn/datasets/",
                                                         "https://web.stanford.edu/~hastie/ElemStatLearn/datasets/")),
                    None, None) for name in ("zip.train.gz", "zip.test.gz"))
# MNIST-M has no official direct download (its authors' copy sits behind a Google Drive page): it is built
# from MNIST and BSDS500 as Ganin & Lempitsky describe (sources/mnist_m.py). BSDS500: a published size (tensorpack's
# DATA_SIZE), no published SHA-256.
BSDS500 = Remote("BSR_bsds500.tgz", ("http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/"
                                     "BSR_bsds500.tgz",), None, 70763455)
FILES = {"mnist": MNIST, "svhn": SVHN, "usps": USPS, "mnist_m": MNIST + (BSDS500,)}
PAGES = {"mnist": "http://yann.lecun.com/exdb/mnist/", "svhn": "http://ufldl.stanford.edu/housenumbers/",
         "usps": "https://hastie.su.domains/ElemStatLearn/data.html",
         "mnist_m": "http://yaroslav.ganin.net/ (mnist_m.tar.gz), or MNIST + BSDS500 for --build_mnist_m"}

# Segmentation datasets are never downloaded (a login, or tens of GB): where to get them, and the archives that
# tools/prepare_data.py --raw_dir accepts as downloaded (.zip; SYNTHIA's .rar must be extracted first).
SEGMENTATION_PAGES = {
    "cityscapes": "https://www.cityscapes-dataset.com/downloads/ (login): leftImg8bit_trainvaltest.zip, "
                  "gtFine_trainvaltest.zip",
    "gta5": "https://download.visinf.tu-darmstadt.de/data/from_games/: 01_images.zip..10_images.zip, "
            "01_labels.zip..10_labels.zip",
    "synthia": "http://synthia-dataset.net/downloads/: SYNTHIA-SEQS-<NN>-<SEASON>.rar (extract it first)",
}


def raw_dir(data_dir):
    return os.path.join(data_dir, RAW_SUBDIR)


def _overrides():
    path = os.environ.get(CHECKSUMS_ENV)
    if not path:
        return {}
    try:
        with open(path) as handle:
            pairs = [line.split(None, 1) for line in handle if line.strip() and not line.startswith("#")]
    except OSError as error:
        raise tfrecord.DataError(f"{path} ({CHECKSUMS_ENV}): unreadable ({error})") from None
    bad = [p for p in pairs if len(p) != 2 or len(p[0]) != 64]
    if bad:
        raise tfrecord.DataError(f"{path} ({CHECKSUMS_ENV}): not '<sha256>  <file name>' lines: {bad[0]}")
    return {name.strip().lstrip("*"): sha.lower() for sha, name in pairs}


def remotes(name):
    """The files of dataset `name` with the mirrors and checksums in force (environment applied)."""
    overrides, mirrors = _overrides(), os.environ.get(MIRRORS_ENV, "")
    bases = [b.strip().rstrip("/") for b in mirrors.split(",") if b.strip()]
    out = []
    for remote in FILES[name]:
        urls = tuple(f"{base}/{name}/{remote.name}" for base in bases) or remote.urls
        sha = overrides.get(remote.name, remote.sha256)
        out.append(remote._replace(urls=urls, sha256=sha, size=remote.size if sha == remote.sha256 else None))
    return out


def by_hand(name, directory):
    """The part of the one-line message that says what to place where, by hand."""
    files = "; ".join(f"{r.name} from {' or '.join(r.urls)}" for r in remotes(name))
    return f"Place by hand in {directory}: {files} (page: {PAGES[name]}), then run again"


def missing(name, data_dir):
    return [r for r in remotes(name) if not os.path.isfile(os.path.join(raw_dir(data_dir), r.name))]


def fetch_all(name, data_dir, say=download.stderr_say):
    """Download every missing raw file of `name` into the raw cache; Unreachable or DataError if one fails."""
    budget, directory = download.Budget(), raw_dir(data_dir)
    for remote in remotes(name):
        download.fetch(remote.name, remote.urls, directory, remote.sha256, remote.size, say, budget)
    return directory


def sources():
    from cycada_tf.data.sources import mnist, mnist_m, svhn, usps
    return {"mnist": mnist, "usps": usps, "svhn": svhn, "mnist_m": mnist_m}


def converter(source, build=False, **_):
    """The manifest's record of the code that converted the raw files (a new version rebuilds)."""
    return f"{source.__name__.rsplit('.', 1)[-1]}-v{source.VERSION}" + ("-built" if build else "")


def prepare(name, raw, directory, info, say=download.stderr_say, **source_args):
    """Records of `name` from the raw files in `raw` into `directory` (atomic; a no-op when current).

    The manifest's inputs are the raw files' SHA-256 and the converter's version, as tools/prepare_data.py
    records them, so a copy made by either is current for the other."""
    source = sources()[name]
    inputs = {}
    for file_name, path in source.input_files(raw, **source_args).items():
        say(f"checksum {path}")
        inputs[file_name] = tfrecord.sha256_of_file(path)
    inputs["converter"] = converter(source, **source_args)
    if tfrecord.is_current(directory, inputs):
        say(f"{directory} is up to date: it was written from these same files; nothing to do")
        return tfrecord.read_manifest(directory)
    say(f"writing {directory} from {raw}")
    return tfrecord.write_dataset(directory, source.examples(raw, **source_args), inputs,
                                  info={**info, "raw_dir": os.path.abspath(raw)})


def ensure(name, data_dir, directory, prepare_hint, info, download_ok, say=download.stderr_say):
    """Make `directory` (dataset `name`'s records) from the raw cache, downloading what is missing when
    `download_ok`; DataError in one line, with the URLs and file names to place by hand, when it cannot."""
    raw = raw_dir(data_dir)
    args = {"build": True} if name == "mnist_m" and not sources()["mnist_m"].has_layout(raw) else {}
    try:  # what a user placed by hand counts (usps.h5, MNIST-M's distribution layout)
        sources()[name].input_files(raw, **args)
        absent = False
    except tfrecord.DataError:
        absent = True
    if absent:
        where = f"dataset '{name}' is not prepared in {directory}. {prepare_hint}."
        if not download_ok:
            raise tfrecord.DataError(f"{where} Not downloaded (--nodownload). {by_hand(name, raw)}")
        try:
            fetch_all(name, data_dir, say)
        except download.Unreachable as error:
            raise tfrecord.DataError(f"{where} Download failed: {error}. {by_hand(name, raw)}") from None
    return prepare(name, raw, directory, info, say, **args)
