#!/bin/sh
# run.sh: chalk's attention against PyTorch's scaled_dot_product_attention on a GPU machine.
#   bench/attention/run.sh [OUTDIR] [SIZES]   (OUTDIR default bench/attention/results, SIZES "512,...,8192")
# Needs build/bench/attention/attn_bench built with CUDA (or $ATTN_BENCH) and a python3 with PyTorch
# and CUDA. REPS (default 30) runs per median, the same for both. Writes
# OUTDIR/attention-<device>-<date>.md (see README.md beside this file).
set -e
OUTDIR=${1:-bench/attention/results}
SIZES=${2:-512,1024,2048,4096,8192}
ATTN_BENCH=${ATTN_BENCH:-build/bench/attention/attn_bench}
REPS=${REPS:-30}
PY=${PYTHON:-python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chalk-attn.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$ATTN_BENCH" "$TMP/chalk.json" "$SIZES" "$REPS"
"$PY" bench/attention/torch_sdpa.py "$TMP/torch.json" "$SIZES" "$REPS"
DEVICE=$("$PY" -c 'import torch; print(torch.cuda.get_device_name())')
"$PY" bench/attention/combine.py "$TMP/chalk.json" "$TMP/torch.json" "$OUTDIR" "$DEVICE"
