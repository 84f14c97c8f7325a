#!/bin/bash
# device_run.sh: `make bench-gpu` from a bundle (make_bundle.sh) on a GPU machine without build
# tools: unpacks it, finds cuBLAS, prints the GPU, runs bench/gpu/run_gpu.py with the machine's
# python3 (PyTorch; PYTHON=... for another) and writes the results and a log into $OUT (else bench/results).
#
#   bench/gpu/device_run.sh [run_gpu.py options...]     (BUNDLE=.gpubench/bundle.tar.xz)
set -u
cd "$(dirname "$0")/../.."
B=${BUNDLE:-.gpubench/bundle.tar.xz}
X=${BUNDLE_DIR:-/tmp/chalk-gpubench}
out=${OUT:-bench/results}
rm -rf "$X" && mkdir -p "$X" "$out"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$B" "$X" || { echo "device_run: cannot unpack $B"; exit 1; }
cat "$X/REVISION"
if ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.13 '; then
  CHALK_CUDA_LIBDIR=
elif [ -e /usr/local/cuda/lib64/libcublas.so.13 ]; then
  CHALK_CUDA_LIBDIR=/usr/local/cuda/lib64
else
  CHALK_CUDA_LIBDIR=$(dirname "$(find /usr /opt -name 'libcublas.so.13' 2>/dev/null | head -1)")
fi
export CHALK_CUDA_LIBDIR
echo "cuBLAS from: ${CHALK_CUDA_LIBDIR:-the loader cache}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used,memory.total --format=csv,noheader
missing=$(LD_LIBRARY_PATH="$X/lib" ldd "$X/bin/chalk.bin" | grep 'not found')
[ -n "$missing" ] && echo "device_run: chalk lacks: $missing"
PY=${PYTHON:-python3}
PYTHONUNBUFFERED=1 "$PY" bench/gpu/run_gpu.py --python "$PY" --chalk "$X/bin/chalk" --gpu-bench "$X/bin/gpu_bench" \
  --out "$out" --log "$out/run_gpu.log" --build-note "$(tr '\n' ';' < "$X/REVISION")" \
  --command "make bench-gpu, here as bench/gpu/device_run.sh $* (bundle of build/chalk and gpu_bench made by bench/gpu/make_bundle.sh)" "$@"
