"""--backbone_weights through `python -m cycada_tf.experiments.segmentation`: ImageNet weights that are neither
in Keras' cache nor downloadable end the run with one line naming the flag and the file, and exit status 2."""

import os

from conftest import child_env, run_experiment
from cycada_tf.models import fcn8s


def test_imagenet_weights_neither_cached_nor_downloadable_are_one_line(tmp_path):
    # An empty KERAS_HOME, and a proxy on a closed loopback port: Keras' download fails at once, and nothing is
    # fetched from the network even where it could be.
    keras_home, closed = str(tmp_path / "keras"), "http://127.0.0.1:9"
    env = child_env(KERAS_HOME=keras_home, https_proxy=closed, HTTPS_PROXY=closed, http_proxy=closed,
                    HTTP_PROXY=closed, no_proxy="", NO_PROXY="")
    done = run_experiment("segmentation", f"--data_dir={tmp_path / 'data'}", f"--run_dir={tmp_path / 'run'}",
                          "--model=fcn8s", "--backbone_weights=imagenet", "--stages=source", "--seeds=0",
                          "--verbose=0", check=False, env=env, timeout=600)
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    expected = os.path.join(keras_home, "models", fcn8s.VGG16_FILE)
    assert lines[0].startswith(f"error: --backbone_weights=imagenet: fcn8s: VGG16 ImageNet weights {expected} is "
                               "not there and could not be downloaded ("), lines[0]
    assert lines[0].endswith(f"download {fcn8s.VGG16_URL} into {os.path.dirname(expected)}"), lines[0]
    assert not os.path.exists(expected)
