#!/usr/bin/env bash
# A virtual environment with the Python reference implementations the tests compare against
# (test-only: prunus itself never runs Python). Each `requirements-<area>.txt` belongs to one
# area of the code (env: minatar, ale-py; stats: rliable).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ] && ! python3 -m venv .venv; then
    apt-get update -qq && apt-get install -y -qq python3-venv python3-pip
    python3 -m venv .venv
fi
for req in tests/setup/requirements-*.txt; do
    [ -e "$req" ] || continue
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$req"
done
