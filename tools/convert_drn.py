"""Convert DRN-C-26's official ImageNet checkpoint (PyTorch, fyu/drn) into the Keras weights of our DRN-C-26
backbone, without PyTorch.

    python tools/convert_drn.py drn_c_26-ddedf421.pth [--output=<file>.weights.h5]

reads the checkpoint (either layout torch.save writes; cycada_tf/models/torch_checkpoint.py), checks it against
the hash in its name if it has one (torch.hub's name-<first 8 hex digits of its sha256>.pth), maps it onto
cycada_tf/models/drn.py (cycada_tf/models/drn_imagenet.py) and writes the backbone's weights, by default where
--backbone_weights=imagenet looks for them: drn_c_26_imagenet.weights.h5 in Keras' cache ($KERAS_HOME/models,
else ~/.keras/models). Prints what it wrote and the checkpoint entries it left out (the ImageNet classifier).
A bad checkpoint ends with one line naming it and exit status 2.
"""

import argparse
import hashlib
import os
import re
import sys

if __package__ in (None, ""):  # run as `python tools/convert_drn.py`: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cycada_tf.train import quiet_tensorflow as quiet  # noqa: E402

if __name__ == "__main__":  # before TensorFlow is imported: its start-up lines (cycada_tf/train/quiet_tensorflow.py)
    quiet.import_tensorflow(quiet.verbosity_given(sys.argv))

from cycada_tf.train import atomic_files as files  # noqa: E402
from cycada_tf.models import drn_imagenet, pretrained, torch_checkpoint  # noqa: E402

KERAS_SUFFIX = ".weights.h5"  # what Keras' save_weights requires of a file name


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="convert_drn", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help=f"the official PyTorch checkpoint ({drn_imagenet.CHECKPOINT_URL})")
    parser.add_argument("--output", default=None,
                        help=f"the Keras weights file to write (default: {drn_imagenet.CONVERTED_FILE} in Keras' "
                             "cache, where --backbone_weights=imagenet finds it)")
    quiet.add_verbosity_flag(parser)
    return parser.parse_args(argv)


def check_hash(path):
    """If `path` is named as torch.hub names checkpoints (name-<hex>.pth), ValueError unless its sha256 starts
    with <hex>: a truncated download, or another file under the official name."""
    match = re.search(r"-([0-9a-f]{8,64})\.pth?$", os.path.basename(path))
    if match is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(match.group(1)):
        raise ValueError(f"{path}: its sha256 starts with {digest.hexdigest()[:len(match.group(1))]}, its name "
                         f"says {match.group(1)}: download it again")


def convert(checkpoint, output):
    """Read `checkpoint`, load it into drn26_backbone and save that to `output` (atomically: a partial file is
    never left under the final name). Returns the checkpoint's entries left unused."""
    if not output.endswith(KERAS_SUFFIX):
        raise ValueError(f"--output={output}: Keras weights files must end in {KERAS_SUFFIX}")
    pretrained.check_file(checkpoint, "checkpoint", "convert_drn")
    check_hash(checkpoint)
    try:
        state = torch_checkpoint.load_state_dict(checkpoint)
    except torch_checkpoint.CheckpointError as error:
        raise ValueError(str(error)) from None
    from cycada_tf.models import drn  # TensorFlow is imported only once the checkpoint reads
    backbone = drn.drn26_backbone()
    unused = drn_imagenet.assign(backbone, state, checkpoint, name="convert_drn")
    files.save_weights(backbone, os.path.abspath(output))
    return unused


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    output = args.output or os.path.join(pretrained.keras_cache_dir(), drn_imagenet.CONVERTED_FILE)
    try:
        unused = convert(args.checkpoint, output)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    counters = [key for key in unused if key.endswith(".num_batches_tracked")]
    classifier = [key for key in unused if key not in counters]
    print(f"wrote {output}")
    print(f"left out: {', '.join(classifier) or 'no classifier'} (ImageNet's classifier, which DRNSeg drops too)"
          + (f" and {len(counters)} batch norm counters (num_batches_tracked)" if counters else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
