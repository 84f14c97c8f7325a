#!/bin/sh
# run.sh: chalk's attention against PyTorch's scaled_dot_product_attention on a GPU machine.
#   bench/attention/run.sh [OUTDIR] [SIZES]   (OUTDIR default bench/attention/results, SIZES "512,...,8192")
# Needs build/chalk built with CUDA (or $CHALK) and a python3 with PyTorch and CUDA. Writes
# OUTDIR/attention-<device>-<date>.md (see README.md beside this file).
set -e
OUTDIR=${1:-bench/attention/results}
SIZES=${2:-512,1024,2048,4096,8192}
CHALK=${CHALK:-build/chalk}
PY=${PYTHON:-python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chalk-attn.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$CHALK" bench/attention/chalk_attention.lua "$TMP/chalk.json" "$SIZES"
"$PY" bench/attention/torch_sdpa.py "$TMP/torch.json" "$SIZES"
DEVICE=$("$PY" -c 'import torch; print(torch.cuda.get_device_name())')
"$PY" bench/attention/combine.py "$TMP/chalk.json" "$TMP/torch.json" "$OUTDIR" "$DEVICE"
