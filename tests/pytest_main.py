"""The main of every py_test in BUILD: pytest on the test files given, slow tests deselected (the fast lane)."""

import os
import sys

# Python put this file's real directory (the source tree's tests/, reached through the runfiles link) first
# on sys.path; without it only the runfiles, which hold just the declared deps, can be imported.
_here = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.realpath(entry or ".") != _here]

import pytest  # noqa: E402

if __name__ == "__main__":
    # Later arguments win: `bazel test --test_arg=-m --test_arg=slow //:test_x` runs the file's slow tests.
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-m", "not slow", *sys.argv[1:]])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print(f"pytest_main.py: no test selected in {' '.join(sys.argv[1:])}; its tests are all slow: select "
              "them with --test_arg=-m --test_arg=slow", file=sys.stderr)
    sys.exit(code)
