#!/usr/bin/env bash
# `make run`: a story from the shipped demo model, a BitNet b1.58 model trained by this project
# (training/train_demo.py; see models/README.md). Extra arguments go to bitnet (e.g. -s 42).
set -euo pipefail
BITNET=${1:-build/bitnet}
shift || true
THREADS=$(lscpu -p=Core,Socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
[[ $THREADS -gt 0 ]] || THREADS=$(nproc)
"$BITNET" -m models/bitnet-demo-stories.gguf -p "Once upon a time" -n 256 -t "$THREADS" "$@"
