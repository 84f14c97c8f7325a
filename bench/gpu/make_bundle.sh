#!/bin/bash
# make_bundle.sh: packs what bench/gpu/run_gpu.py and make test-gpu need from a build into one archive, for a GPU
# machine that has PyTorch and the CUDA driver but no compiler, Lua, Graphviz or OpenBLAS (such as
# the lent device machine): build/chalk and build/bench/gpu/gpu_bench (debug info stripped), the
# shared libraries they load that are not glibc, libstdc++/libgcc or CUDA's own, and wrappers that
# put those libraries on LD_LIBRARY_PATH for these two programs only (PyTorch keeps the machine's).
# CUDA libraries (cuBLAS) are the machine's: device_run.sh finds them.
#
#   bench/gpu/make_bundle.sh [BUILD_DIR] [OUT_DIR]     (defaults: build, .gpubench)
#   -> OUT_DIR/bundle.tar.xz; keep OUT_DIR out of git (.git/info/exclude) and carry it.
set -euo pipefail
BUILD=${1:-build}
DEST=${2:-.gpubench}
for f in "$BUILD/chalk" "$BUILD/bench/gpu/gpu_bench"; do
  [ -x "$f" ] || { echo "make_bundle: $f is missing (make all with nvcc on PATH first)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/lib"
# The GPU tests (make test-gpu) travel too when built: the parity harness, the capture tests, the
# nccl transport's one-GPU test and its bench (tests/dist/nccl.sh needs the Lua scripts beside).
progs="chalk bench/gpu/gpu_bench"
for t in tests/gpu/parity tests/gpu_capture tests/graph_pool bench/attention/attn_bench tests/dist/test_nccl_gpu bench/dist/nccl_bench; do
  [ -x "$BUILD/$t" ] && progs="$progs $t"
done
for p in $progs; do
  n=$(basename "$p")
  strip --strip-debug -o "$tmp/bin/$n.bin" "$BUILD/$p"
  cat > "$tmp/bin/$n" <<WRAP
#!/bin/sh
# $n from the bundle, with the bundle's libraries (and CHALK_CUDA_LIBDIR, where cuBLAS lies).
d=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH="\$d/lib\${CHALK_CUDA_LIBDIR:+:\$CHALK_CUDA_LIBDIR}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$d/bin/$n.bin" "\$@"
WRAP
  chmod +x "$tmp/bin/$n"
  ldd "$BUILD/$p" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    case $name in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
      libcuda.so*|libcudart.so*|libcublas*|libnvrtc*|libnvJitLink*) ;;
      *) [ -e "$tmp/lib/$name" ] || cp -L "$path" "$tmp/lib/$name" ;;
    esac
  done
done
rev=$(git -C "$(dirname "$0")" rev-parse HEAD 2>/dev/null || echo unknown)
{ echo "built from: $(cd "$BUILD/.." && pwd) ($BUILD) at $(date -u +%FT%TZ)"; echo "git HEAD where make_bundle ran: $rev";
  echo "host: $(uname -srm), $(ldd --version | head -1)"; } > "$tmp/REVISION"
[ -f "$BUILD/../.bundle-rev" ] && echo "source revision: $(cat "$BUILD/../.bundle-rev")" >> "$tmp/REVISION"
mkdir -p "$DEST"
tar -C "$tmp" -cJf "$DEST/bundle.tar.xz" .
ls -la "$DEST/bundle.tar.xz"
tar -tvJf "$DEST/bundle.tar.xz"
