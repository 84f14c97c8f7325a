#!/bin/sh
# run.sh: bench/serve, tokens/s of greedy generation with a KV cache, chalk's lm:generate against the
# same model in PyTorch (CPU), batch 1 and 32, one thread each; prints a markdown table.
#   sh bench/serve/run.sh [rounds]
R=${1:-5}
cd "$(dirname "$0")/../.." || exit 1
echo "| batch | chalk tokens/s | PyTorch tokens/s | chalk / PyTorch |"
echo "|---|---|---|---|"
for B in 1 32; do
  c=$(OPENBLAS_NUM_THREADS=1 build/chalk bench/serve/generate.lua "$B" "$R" | awk '{print $3}')
  t=$(OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 -c "import torch; torch.set_num_threads(1); import runpy, sys; sys.argv=['g', '$B', '$R']; runpy.run_path('bench/serve/generate_torch.py', run_name='__main__')" | awk '{print $3}')
  echo "| $B | $c | $t | $(echo "$c $t" | awk '{printf "%.2f", $1/$2}') |"
done
