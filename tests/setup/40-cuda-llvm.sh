#!/usr/bin/env bash
# The LLVM that the CUDA build links (scripts/cuda-build): tests/run checks on every change that
# `--features cuda` still compiles, with no GPU and no download from GitHub.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/cuda-build prepare
