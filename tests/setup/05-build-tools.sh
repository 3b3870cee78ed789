#!/usr/bin/env bash
# The Atari environments build ALE (C++) with cmake: the tests build prunus with
# `--features atari`. Installs cmake and a C++ compiler when missing.
set -euo pipefail
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v c++ >/dev/null || missing+=(g++)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: ${missing[*]} missing and not root to install them" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
