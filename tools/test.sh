#!/usr/bin/env bash
# The test command of README.md: set up .venv if needed, then run the whole suite (slow tests included) in two
# pytest-xdist workers, a test file to a worker (its module fixtures built once), the longest files first
# (tests/conftest.py LONGEST_FIRST; xdist would otherwise reorder the files by their number of tests, which
# left the longest ones to the end and one worker idle for minutes); -n 0 runs it in one process.
# Arguments pass through to pytest; a path among them runs that file or directory instead of tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
where=(tests)
for argument in "$@"; do
  case "$argument" in
    -*) ;;
    *) if [ -e "${argument%%::*}" ]; then where=(); fi ;;
  esac
done
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder "${where[@]}" "$@"
