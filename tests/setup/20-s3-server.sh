#!/usr/bin/env bash
# Starts moto's S3-compatible server on a free port of 127.0.0.1 for the S3 remote's tests,
# and records how to reach it (tests/run reads .services/env) and how to stop it
# (.services/*.pid, which tests/run kills when the tests end). Tests that must kill a server
# (or need one that checks credentials) start their own with PRUNUS_TEST_MOTO.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .services
if [ -f .services/s3.pid ] && kill -0 "$(cat .services/s3.pid)" 2>/dev/null; then
    exit 0 # already running (setup is idempotent)
fi
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >.services/s3.log 2>&1 &
echo $! >.services/s3.pid
for _ in $(seq 100); do
    if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
cat >.services/env <<ENV
export PRUNUS_TEST_S3_ENDPOINT=http://127.0.0.1:$port
export PRUNUS_TEST_MOTO=$PWD/.venv/bin/moto_server
ENV
echo "S3 server (moto) on 127.0.0.1:$port"
