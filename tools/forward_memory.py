"""Peak memory of one float32 forward pass of a segmenter at batch 1, on this machine: what scoring one image at
a resolution (--eval_resolution=native: Cityscapes' 2048x1024) needs, the network at random init.

    python tools/forward_memory.py --model=fcn8s --height=1024 --width=2048

Prints one JSON line: the process's peak resident set (Linux VmHWM: the TensorFlow runtime, the weights and the
pass together; what /usr/bin/time -v calls its maximum resident set size), the resident set before the network
was built, and the pass's own peak (tools/machine.PeakMemory: a GPU allocator's peak where there is a GPU).
Run one model per process: the peak of a process never goes down."""

import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):  # run as `python tools/forward_memory.py`: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cycada_tf.train import quiet_tensorflow as quiet  # noqa: E402

CLASSES = 19  # Cityscapes' train ids


def _status_kib(key):
    """A line of /proc/self/status in KiB (VmRSS, VmHWM); None where it cannot be read."""
    try:
        with open("/proc/self/status") as handle:
            return next((int(line.split()[1]) for line in handle if line.startswith(key + ":")), None)
    except OSError:
        return None


def measure(model, height, width):
    """{model, height, width, seconds, peak_rss_mib, rss_before_model_mib, pass_peak_mib} of one forward pass."""
    import numpy as np
    import tensorflow as tf

    from cycada_tf.models import drn, fcn8s, small_fcn
    from tools import machine
    build = {"small_fcn": small_fcn.small_fcn, "fcn8s": fcn8s.fcn8s, "drn26": drn.drn26}[model]
    before = _status_kib("VmRSS")
    net = build(CLASSES, dtype="float32")
    image = tf.constant(np.random.RandomState(0).uniform(-1, 1, (1, height, width, 3)).astype(np.float32))
    start = time.monotonic()
    with machine.PeakMemory() as peak:
        logits = net(image, training=False).numpy()
    seconds = time.monotonic() - start
    if logits.shape != (1, height, width, CLASSES):
        raise RuntimeError(f"{model}: logits of shape {logits.shape} for a {height}x{width} image")
    mib = 1 / 1024
    return {"model": model, "height": height, "width": width, "seconds": round(seconds, 2),
            "peak_rss_mib": round(_status_kib("VmHWM") * mib), "rss_before_model_mib": round(before * mib),
            "pass_peak_mib": None if peak.bytes is None else round(peak.bytes / 2**20), "peak_kind": peak.kind}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("small_fcn", "fcn8s", "drn26"), default="fcn8s")
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--width", type=int, default=2048)
    quiet.add_verbosity_flag(parser)
    args = parser.parse_args(argv)
    if min(args.height, args.width) < 1:
        parser.error("--height and --width must be positive")
    quiet.import_tensorflow(args.verbosity is not None)
    result = measure(args.model, args.height, args.width)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
