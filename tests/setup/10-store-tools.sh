#!/usr/bin/env bash
# The store's tests check that blob files decode with the stock `zstd` CLI and mount small
# tmpfs file systems (full disk, read-only store) with `mount`; its benchmark compares with
# `b3sum` and `zstd`. Installs what is missing.
set -euo pipefail
missing=()
command -v zstd >/dev/null || missing+=(zstd)
command -v b3sum >/dev/null || missing+=(b3sum)
command -v mount >/dev/null || missing+=(mount)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "note: not root, cannot install ${missing[*]}; the store tests that need them are skipped" >&2
        exit 0
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
