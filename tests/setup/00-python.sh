#!/usr/bin/env bash
# A virtual environment with the Python reference implementations the tests compare against.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/setup/requirements.txt
