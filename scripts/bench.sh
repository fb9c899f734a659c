#!/usr/bin/env bash
# `make bench`: speed at the real size. Writes (once) a model of BitNet b1.58 2B4T's exact shape
# with random weights, then measures prompt processing and generation (llama-bench's table).
set -euo pipefail
BITNET=${1:-build/bitnet}
MODEL=models/dummy-2b4t-i2_s.gguf
if [[ ! -f $MODEL ]]; then
  mkdir -p models
  echo "Writing $MODEL (random weights in BitNet b1.58 2B4T's shape, I2_S; once)..."
  "$BITNET" dummy --shape 2b4t --type i2_s -o "$MODEL"
fi
THREADS=$(lscpu -p=Core,Socket 2>/dev/null | grep -v '^#' | sort -u | wc -l)
[[ $THREADS -gt 0 ]] || THREADS=$(nproc)
"$BITNET" bench -m "$MODEL" -p 128 -n 64 -r 3 -t "$THREADS"
