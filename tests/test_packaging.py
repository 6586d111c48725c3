"""pyproject.toml: its dependencies are requirements.txt's pins, the test-only ones its extra `test` (which
tools/setup.sh installs), its version is the package's, and every console script names a function that imports
and runs its command."""

import os
import re
import subprocess
import sys
import tomllib

from conftest import REPO
import cycada_tf

PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)$")


def pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)


def pins():
    """requirements.txt's lines name==version (comments and blank lines aside)."""
    with open(os.path.join(REPO, "requirements.txt")) as handle:
        lines = [line.split("#", 1)[0].strip() for line in handle]
    found = [line for line in lines if line]
    assert all(PIN.match(line) for line in found), found
    return found


def test_dependencies_are_the_pins_and_pytest_is_the_test_extra_that_setup_installs():
    project = pyproject()["project"]
    assert project["dependencies"] == pins() and not [pin for pin in pins() if pin.startswith("pytest")]
    # tools/test.sh runs pytest in xdist workers (-n), so the plugin is a test dependency beside pytest.
    assert [PIN.match(pin).group(1) for pin in project["optional-dependencies"]["test"]] == ["pytest", "pytest-xdist"]
    with open(os.path.join(REPO, "tools", "test.sh")) as handle:
        assert " -n " in handle.read()
    with open(os.path.join(REPO, "tools", "setup.sh")) as handle:
        setup = handle.read()
    assert '["optional-dependencies"]["test"]' in setup and "-r requirements.txt" in setup


def test_the_version_and_packages_are_the_packages():
    config = pyproject()["tool"]["setuptools"]
    assert config["dynamic"]["version"] == {"attr": "cycada_tf.__version__"} and cycada_tf.__version__
    assert config["packages"]["find"]["include"] == ["cycada_tf", "cycada_tf.*"]


# What each command's --help says, at least.
HELP = {"cycada-digits": "--pixel_epochs: ", "cycada-segmentation": "--pixel_epochs: ",
        "cycada-prepare": "usage: cycada-prepare [-h] --dataset",
        "cycada-export": "usage: cycada-export [-h] --run_dir"}


def test_every_console_script_names_a_callable_that_runs_the_command():
    scripts = pyproject()["project"]["scripts"]
    assert set(scripts) == set(HELP)
    for name, target in scripts.items():
        module, function = target.split(":")
        # what the installed script runs, in its own process (each main defines its flags in absl's FLAGS):
        # the function, called with no argument, the command line in sys.argv
        done = subprocess.run([sys.executable, "-c", f"import sys; from {module} import {function}; "
                               f"assert callable({function}); sys.argv = [{name!r}, '--help']; {function}()"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and HELP[name] in done.stdout, (name, done.stdout[-2000:], done.stderr[-2000:])
