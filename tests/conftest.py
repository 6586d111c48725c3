"""Shared fixtures: the embedded digit domains, built once per test session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

import pytest  # noqa: E402

EMBEDDED = ("uci", "uci_m", "fonts")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a real end-to-end run (minutes); still part of CI")


@pytest.fixture(scope="session")
def embedded_data_dir(tmp_path_factory):
    """A data_dir holding the TFRecords of every embedded domain (a few seconds to build)."""
    from cycada_tf.data import registry
    data_dir = str(tmp_path_factory.mktemp("embedded_data"))
    for name in EMBEDDED:
        registry.ensure(name, data_dir)
    return data_dir
