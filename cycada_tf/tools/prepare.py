"""Prepare a dataset once: its official raw files -> sharded TFRecords with a manifest.

The command `cycada-prepare`, or `python tools/prepare_data.py` from a checkout:

    python tools/prepare_data.py --dataset=mnist --raw_dir=/path/to/raw --data_dir=data [--verify]
    python tools/prepare_data.py --dataset=gta5 --raw_dir=/path/to/gta5 --data_dir=data --width=1024
    python tools/prepare_data.py --dataset=cityscapes --raw_dir=<dir with the .zip archives> --data_dir=data
    python tools/prepare_data.py --dataset=svhn --data_dir=data --verify     # check a prepared copy
    python tools/prepare_data.py --dataset=mnist_m --build_mnist_m --raw_dir=<MNIST files, BSR_bsds500.tgz>

Every raw file is read and checked before anything is written, and the dataset directory appears in one
step, so a failed run leaves nothing behind. Running again on the same files (same SHA-256) is a no-op.
A segmentation pair whose label is not the size of its image (a few of GTA5's) is left out and reported (the
first few in the log, all of them in the manifest), unless --mismatched_labels=resize keeps it.
"""

import argparse
import os
import sys
import time

from cycada_tf.train import quiet_tensorflow as quiet

if __name__ == "__main__":  # before TensorFlow is imported: its start-up lines (cycada_tf/train/quiet_tensorflow.py)
    quiet.import_tensorflow(quiet.verbosity_given(sys.argv))

from cycada_tf.train import failures  # noqa: E402
from cycada_tf.data import archives, public, registry, tfrecord  # noqa: E402
from cycada_tf.data.sources import cityscapes, gta5, segmentation, synthia  # noqa: E402

SOURCES = public.sources()  # mnist, usps, svhn, mnist_m
# Segmentation datasets: name -> (source module, arguments of its layout()).
SEGMENTATION_SOURCES = {"gta5": (gta5, {}), "cityscapes": (cityscapes, {}),
                        **{name: (synthia, {"season": season}) for name, season in synthia.SEASONS.items()}}
PROGRESS_EVERY = 10000  # records between two progress lines
SEGMENTATION_RECORDS_PER_SHARD = 500  # a 1024-wide image and label are ~1 MB: shards of ~0.5 GB
SKIPPED_SHOWN = 10  # unpaired files named in the log; the manifest keeps up to SKIPPED_KEPT of them
SKIPPED_KEPT = 1000
MISMATCHED_SHOWN = 5  # mis-sized pairs named in the log; the manifest keeps all of them


def _say(message):
    print(message, flush=True)


def parse_args(argv, prog="prepare_data"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=sorted({**SOURCES, **SEGMENTATION_SOURCES}),
                        help="which dataset to prepare")
    parser.add_argument("--raw_dir", help="directory holding the official files, as downloaded; "
                                          "leave it out to only --verify a prepared copy")
    parser.add_argument("--data_dir", default="data", help="where the TFRecords go: <data_dir>/<dataset>/")
    parser.add_argument("--verify", action="store_true",
                        help="re-read every record afterwards and name any bad shard")
    parser.add_argument("--records_per_shard", type=int, default=None,
                        help=f"records in each TFRecord shard (default {tfrecord.RECORDS_PER_SHARD}, "
                             f"{SEGMENTATION_RECORDS_PER_SHARD} for segmentation datasets)")
    parser.add_argument("--width", type=int, default=segmentation.PAPER_WIDTH,
                        help="segmentation datasets only: resize every image (bilinear) and label map "
                             "(nearest) to this width, keeping the aspect ratio; 0 keeps the native size. "
                             "The paper uses 1024")
    parser.add_argument("--build_mnist_m", action="store_true",
                        help="mnist_m only: build it from the MNIST IDX files in --raw_dir and BSDS500 photos "
                             "(Ganin & Lempitsky 2015) instead of reading mnist_m_train/ and mnist_m_test/")
    parser.add_argument("--bsds500", default=None,
                        help="--build_mnist_m: BSR_bsds500.tgz as distributed, or its extracted BSR/ "
                             "directory (default: found in --raw_dir)")
    parser.add_argument("--mismatched_labels", default="skip", choices=segmentation.MISMATCHED_LABELS,
                        help="segmentation datasets only: what becomes of a pair whose label map is not the "
                             "size of its image (a few of GTA5's). skip (default): left out, and listed in the "
                             "log and the manifest. resize: kept, its label map resized to the image's size "
                             "by nearest neighbour (label ids are never blended), before --width applies")
    quiet.add_verbosity_flag(parser)
    args = parser.parse_args(argv)
    if args.build_mnist_m and args.dataset != "mnist_m":
        parser.error("--build_mnist_m builds --dataset=mnist_m only")
    if args.raw_dir is None and not args.verify:
        parser.error("give --raw_dir to prepare, or --verify to check a prepared copy")
    if args.width < 0:
        parser.error("--width must be 0 (native size) or a positive number of pixels")
    return args


def input_checksums(source, raw_dir, **source_args):
    """{file name: sha256} of the raw files, plus the converter version: what the manifest records."""
    inputs = {}
    for name, path in source.input_files(raw_dir, **source_args).items():
        _say(f"checksum {path}")
        inputs[name] = tfrecord.sha256_of_file(path)
    inputs["converter"] = public.converter(source, **source_args)
    return inputs


def _with_progress(examples, split):
    start, n = time.time(), 0
    for n, example in enumerate(examples, start=1):
        if n % PROGRESS_EVERY == 0:
            _say(f"  {split}: {n} records ({time.time() - start:.0f} s)")
        yield example
    _say(f"  {split}: {n} records written")


def _missing_ancestor(path):
    """The topmost directory of `path` that does not exist yet (None if path exists)."""
    path, top = os.path.abspath(path), None
    while not os.path.exists(path):
        path, top = os.path.dirname(path), path
    return top


def _remove_empty(path, top):
    """Remove the empty directories from path up to top, the ones a failed run created."""
    path = os.path.abspath(path)
    while os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)
        if path == top:
            return
        path = os.path.dirname(path)


def prepare(dataset, raw_dir, data_dir, records_per_shard=None, width=segmentation.PAPER_WIDTH,
            mismatched_labels="skip", **source_args):
    """Write <data_dir>/<dataset> from the files in raw_dir unless it is current; returns the manifest.
    source_args: mnist_m's build=True and bsds500=<path> (--build_mnist_m)."""
    if dataset in SEGMENTATION_SOURCES:
        return prepare_segmentation(dataset, raw_dir, data_dir,
                                    records_per_shard or SEGMENTATION_RECORDS_PER_SHARD, width, mismatched_labels)
    records_per_shard = records_per_shard or tfrecord.RECORDS_PER_SHARD
    source, spec = SOURCES[dataset], registry.get(dataset)
    directory = registry.dataset_dir(data_dir, dataset)
    if not os.path.isdir(raw_dir):
        raise tfrecord.DataError(f"{raw_dir}: no such directory (--raw_dir)")
    inputs = input_checksums(source, raw_dir, **source_args)
    tfrecord.remove_stale_partials(directory, log=_say)
    if tfrecord.is_current(directory, inputs):
        _say(f"{directory} is up to date: it was written from these same files; nothing to do")
        return tfrecord.read_manifest(directory)
    created = _missing_ancestor(data_dir)
    try:
        _say(f"reading and checking {', '.join(n for n in inputs if n != 'converter')}")
        splits = source.examples(raw_dir, **source_args)
        _say(f"writing {directory}")
        return tfrecord.write_dataset(
            directory, {split: _with_progress(examples, split) for split, examples in splits.items()},
            inputs, info={"image_size": spec.image_size, "channels": spec.channels,
                          "raw_dir": os.path.abspath(raw_dir)},
            records_per_shard=records_per_shard)
    except BaseException:
        if created:
            _remove_empty(data_dir, created)
        raise


def prepare_segmentation(dataset, raw_dir, data_dir, records_per_shard, width, mismatched_labels="skip"):
    """prepare() for an image + label map dataset: pair the files, check every pair's headers, then write."""
    (source, layout_args), spec = SEGMENTATION_SOURCES[dataset], registry.get(dataset)
    directory = registry.dataset_dir(data_dir, dataset)
    if not os.path.isdir(raw_dir):
        raise tfrecord.DataError(f"{raw_dir}: no such directory (--raw_dir)")
    # The archives as downloaded (.zip) are extracted once into <data_dir>/raw/<dataset>/.
    raw_dir = archives.unpacked(raw_dir, os.path.join(public.raw_dir(data_dir), dataset), _say)
    layout = source.layout(raw_dir, **layout_args)
    counts = ", ".join(f"{split} {len(pairs)}" for split, pairs in layout.splits.items())
    _say(f"found {counts} image/label pairs in {raw_dir}")
    if layout.skipped:
        _say(f"left out {len(layout.skipped)} files without a partner: "
             + "; ".join(layout.skipped[:SKIPPED_SHOWN])
             + (" ..." if len(layout.skipped) > SKIPPED_SHOWN else ""))
    segmentation.separate_mismatched(layout, mismatched_labels)
    if layout.mismatched:
        _say(f"{'resized the labels of' if mismatched_labels == 'resize' else 'left out'} "
             f"{len(layout.mismatched)} pairs whose label is not the size of its image (all listed in the "
             f"manifest): " + "; ".join(layout.mismatched[:MISMATCHED_SHOWN])
             + (" ..." if len(layout.mismatched) > MISMATCHED_SHOWN else "")
             + ("" if mismatched_labels == "resize" else ". --mismatched_labels=resize keeps them"))
    _say("checksumming the files")
    inputs = segmentation.fingerprint(source, layout, width, say=_say)
    if mismatched_labels != "skip":
        inputs["converter"] += f"-mismatched_labels={mismatched_labels}"
    tfrecord.remove_stale_partials(directory, log=_say)
    if tfrecord.is_current(directory, inputs):
        _say(f"{directory} is up to date: it was written from these same files; nothing to do")
        return tfrecord.read_manifest(directory)
    _say("checking the headers of every image and label")
    source.check(layout)
    created = _missing_ancestor(data_dir)
    try:
        _say(f"writing {directory}" + (f" (width {width})" if width else " (native size)"))
        splits = segmentation.examples(source, layout, width)
        return tfrecord.write_dataset(
            directory, {split: _with_progress(examples, split) for split, examples in splits.items()},
            inputs, info={"width": width or None, "channels": spec.channels, "classes": list(spec.classes),
                          "ignore_label": spec.ignore_label, "raw_dir": os.path.abspath(raw_dir),
                          "skipped_count": len(layout.skipped), "skipped": layout.skipped[:SKIPPED_KEPT],
                          "mismatched_labels": mismatched_labels, "mismatched_count": len(layout.mismatched),
                          "mismatched": layout.mismatched},
            records_per_shard=records_per_shard)
    except BaseException:
        if created:
            _remove_empty(data_dir, created)
        raise


def report(directory, manifest):
    for split, entry in manifest["splits"].items():
        if manifest["info"].get("ignore_label") is not None:  # segmentation: label maps, no class counts
            width = manifest["info"].get("width")
            _say(f"{directory} {split}: {entry['count']} records in {len(entry['files'])} shards "
                 f"(images and label maps, {f'width {width}' if width else 'native size'})")
            continue
        classes = " ".join(f"{k}:{v}" for k, v in entry["classes"].items())
        _say(f"{directory} {split}: {entry['count']} records in {len(entry['files'])} shards "
            f"(per class {classes})")


def report_left_out(manifest):
    """The count summary of what a segmentation dataset's records leave out or changed."""
    info = manifest["info"]
    if "skipped_count" not in info:
        return
    mismatched, resized = info.get("mismatched_count", 0), info.get("mismatched_labels") == "resize"
    _say(f"left out: {info['skipped_count']} files without a partner, "
         f"{0 if resized else mismatched} pairs whose label is not the size of its image"
         + (f"; {mismatched} such labels resized to their image" if resized else ""))


def main(argv=None, prog="prepare_data"):
    """Prepare and/or verify one dataset; raises tfrecord.DataError on bad or missing data."""
    args = parse_args(argv, prog)
    failures.check_directory(args.data_dir, "--data_dir")
    directory = registry.dataset_dir(args.data_dir, args.dataset)
    if args.raw_dir is not None:
        build = {"build": True, "bsds500": args.bsds500} if args.build_mnist_m else {}
        manifest = prepare(args.dataset, args.raw_dir, args.data_dir, args.records_per_shard, args.width,
                           args.mismatched_labels, **build)
    else:
        manifest = tfrecord.read_manifest(directory)
        if manifest is None:
            raise tfrecord.DataError(f"nothing to verify: {directory} is not prepared. "
                                     f"{registry.get(args.dataset).prepare_hint}")
    report(directory, manifest)
    report_left_out(manifest)
    if args.verify:
        _say(f"verifying every record of {directory}")
        counts = tfrecord.verify(directory)
        _say("verified: " + ", ".join(f"{split} {n}" for split, n in counts.items()))
    return 0


def cli(argv=None, prog="prepare_data"):
    """The command line: a data error, or an OS error (a --data_dir that is a file or read-only, a full
    disk), ends with its one-line message (the path and the errno text) and exit status 2, as the
    experiments do."""
    try:
        return main(argv, prog)
    except tfrecord.DataError as error:
        print(f"prepare_data: error: {error}", file=sys.stderr)
        return 2
    except failures.StorageError as error:
        print(f"prepare_data: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - only a disk's error is turned into one line
        line = failures.storage_line(error)
        if line is None:
            raise
        print(f"prepare_data: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
