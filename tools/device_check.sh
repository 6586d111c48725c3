#!/usr/bin/env bash
# The GPU check (tools/device_check.py): one prepared command for a lent GPU machine with no network, at most
# 8 minutes, its results as JSON in one folder ($OUT there). --cpu: the small CPU path; --dry_run: the plan.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
exec "$py" tools/device_check.py "$@"
