#!/bin/bash
# device_run.sh: on a GPU machine without build tools, from a bundle (bench/gpu/make_bundle.sh, which packs
# attn_bench too): the CUDA parity harness, the matmul ladder at 4096, the attention table against PyTorch's
# SDPA, and Nsight Compute's view of the bf16 flash kernels at N = 4096; everything into $OUT (or /tmp/out).
#
#   bench/attention/device_run.sh          (BUNDLE=.gpubench/bundle.tar.xz; REPS=30)
set -u
cd "$(dirname "$0")/../.."
B=${BUNDLE:-.gpubench/bundle.tar.xz}
X=${BUNDLE_DIR:-/tmp/chalk-attn}
out=${OUT:-/tmp/out}
rm -rf "$X" && mkdir -p "$X" "$out"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$B" "$X" || { echo "cannot unpack $B"; exit 1; }
CHALK_CUDA_LIBDIR=$(dirname "$(find /usr /opt -name 'libcublas.so.13' 2>/dev/null | head -1)")
export CHALK_CUDA_LIBDIR
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
timeout 120 "$X/bin/parity" > "$out/parity.log" 2>&1; echo "parity rc=$?"
grep -iE "FAIL|attention|wgmma" "$out/parity.log" | head -30; tail -2 "$out/parity.log"
timeout 40 "$X/bin/gpu_bench" --sizes 4096 --skip-naive-above 1 --out "$out" > "$out/gpu_bench.log" 2>&1; echo "gpu_bench rc=$?"
grep -E "wmma|wgmma|cublas" "$out/gpu_bench.log" | head -8
REPS=${REPS:-30} ATTN_BENCH="$X/bin/attn_bench" PYTHONUNBUFFERED=1 timeout 120 sh bench/attention/run.sh "$out" \
  > "$out/attention.log" 2>&1; echo "attention rc=$?"
grep -E "^(## |\| [0-9])" "$out"/attention-*.md | awk -F'|' '{print $1, $2, $(NF-2), $(NF-1)}'
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
for k in k_fa_fwd k_fa_bwd; do
  timeout 60 "$NCU" --kernel-name "regex:$k" --launch-count 1 --section SpeedOfLight --section WarpStateStats \
    --section Occupancy --section ComputeWorkloadAnalysis "$X/bin/attn_bench" /tmp/ncu.json 4096 1 > "$out/ncu-$k.txt" 2>&1
  echo "ncu $k rc=$?"
  grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Stall|Issue Slots Busy" "$out/ncu-$k.txt" | head -12
done
