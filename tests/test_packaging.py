"""pyproject.toml: its dependencies are requirements.txt's pins but the test runner's (the extra `test`), its version
is the package's, and every console script names a function that imports and runs the experiment's command."""

import os
import re
import subprocess
import sys
import tomllib

import cycada_tf

REPO = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+)$")
TEST_PACKAGES = ("pytest", "pytest-xdist")  # tools/test.sh runs pytest in two xdist workers


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


def test_dependencies_are_the_pins_but_the_test_runners_which_are_the_test_extra():
    project = pyproject()["project"]
    testing = [pin for pin in pins() if PIN.match(pin).group(1) in TEST_PACKAGES]
    assert [PIN.match(pin).group(1) for pin in testing] == list(TEST_PACKAGES)
    assert project["dependencies"] == [pin for pin in pins() if pin not in testing]
    assert project["optional-dependencies"]["test"] == testing


def test_the_version_and_packages_are_the_packages():
    config = pyproject()["tool"]["setuptools"]
    assert config["dynamic"]["version"] == {"attr": "cycada_tf.__version__"} and cycada_tf.__version__
    assert config["packages"]["find"]["include"] == ["cycada_tf", "cycada_tf.*"]


def test_every_console_script_names_a_callable_that_runs_the_command():
    scripts = pyproject()["project"]["scripts"]
    assert set(scripts) == {"cycada-digits", "cycada-segmentation"}
    for name, target in scripts.items():
        module, function = target.split(":")
        # what the installed script runs, in its own process (each main defines its flags in absl's FLAGS):
        # the function, called with no argument, the command line in sys.argv
        done = subprocess.run([sys.executable, "-c", f"import sys; from {module} import {function}; "
                               f"assert callable({function}); sys.argv = [{name!r}, '--help']; {function}()"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "--pixel_epochs: " in done.stdout, done.stderr
