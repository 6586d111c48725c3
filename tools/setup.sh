#!/usr/bin/env bash
# Creates .venv with the pinned requirements (once; re-run after requirements.txt or pyproject.toml changes):
# requirements.txt's runtime pins, then the test-only ones, pyproject.toml's extra `test` (what
# `pip install .[test]` adds). The package itself is not installed there: the tests, the tools and Bazel's
# runfiles import the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setting up .venv (requirements.txt, then the extra 'test' of pyproject.toml) ..."
  python3 -m venv .venv
  .venv/bin/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["test"]))' > .venv/test-requirements.txt
  # uv installs the same pins in seconds where pip takes most of a minute, compiled to bytecode as pip does
  # (without it every process compiles TensorFlow's modules again); pip where uv cannot be had.
  if ! { .venv/bin/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 &&
         .venv/bin/python -m uv pip install --quiet --compile-bytecode --python .venv/bin/python -r requirements.txt \
           -r .venv/test-requirements.txt; }; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    .venv/bin/python -m pip install --quiet -r .venv/test-requirements.txt
  fi
  echo "$want" > "$stamp"
fi
