#!/usr/bin/env bash
# `make run`: generate with a BitNet b1.58 2B4T-shaped model. The weights are random, so the text
# is noise; the point is the speed on this machine at the real model's size.
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
echo "Note: the weights are random, so the generated text is noise; look at the speeds."
"$BITNET" -m "$MODEL" -p "Hello, BitNet!" -n 64 -t "$THREADS" --temp 0
