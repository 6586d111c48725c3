#!/usr/bin/env bash
# The test command of README.md: set up .venv if needed, then run the whole suite (slow tests included) in two
# pytest-xdist workers, a test file to a worker (its module fixtures built once), the longest files first
# (tests/conftest.py LONGEST_FIRST; xdist would otherwise reorder the files by their number of tests, which
# left the longest ones to the end and one worker idle for minutes), TensorFlow's threads split between them;
# -n 0 runs it in one process.
# Arguments pass through to pytest; a path among them runs that file or directory instead of tests/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
where=(tests)
workers=2
previous=
for argument in "$@"; do
  case "$argument" in
    --numprocesses=*) workers=${argument#*=} ;;
    -n?*) workers=${argument#-n} ;;
    -*) ;;
    *) if [ "$previous" = -n ] || [ "$previous" = --numprocesses ]; then workers=$argument
       elif [ -e "${argument%%::*}" ]; then where=(); fi ;;
  esac
  previous=$argument
done
# TensorFlow's thread pools share the cores between the workers (each would otherwise take every core, and
# two workers on 2 cores then run ~10% slower); the child processes the tests start inherit it. A caller's
# own setting is kept.
if [[ $workers =~ ^[0-9]+$ ]] && [ "$workers" -gt 0 ]; then
  threads=$(( $(nproc) / workers > 0 ? $(nproc) / workers : 1 ))
  export TF_NUM_INTRAOP_THREADS=${TF_NUM_INTRAOP_THREADS:-$threads}
  export TF_NUM_INTEROP_THREADS=${TF_NUM_INTEROP_THREADS:-$threads}
fi
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder "${where[@]}" "$@"
