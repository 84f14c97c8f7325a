#!/bin/sh
# run_gpu.sh: bench/serve on a GPU machine: tokens/s of greedy generation with a KV cache, chalk's
# lm:generate on CUDA against the same model in PyTorch on CUDA (eager), batch 1 and 32; prints a
# markdown table. CHALK names the chalk to run (default build/chalk; on the lent device machine the
# bundle's bin/chalk from bench/gpu/make_bundle.sh), PY the Python with a CUDA PyTorch.
#   CHALK=/tmp/b/bin/chalk sh bench/serve/run_gpu.sh [rounds]
R=${1:-5}
cd "$(dirname "$0")/../.." || exit 1
CHALK=${CHALK:-build/chalk}
PY=${PY:-python3}
echo "| batch | chalk tokens/s (CUDA) | PyTorch tokens/s (CUDA, eager) | chalk / PyTorch |"
echo "|---|---|---|---|"
for B in 1 32; do
  c=$("$CHALK" bench/serve/generate.lua "$B" "$R" cuda | awk '/^chalk/ {print $3}')
  t=$("$PY" bench/serve/generate_torch.py "$B" "$R" cuda | awk '/^torch/ {print $3}')
  echo "| $B | $c | $t | $(echo "$c $t" | awk '$2 > 0 {printf "%.2f", $1/$2}') |"
done
