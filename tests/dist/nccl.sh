#!/bin/sh
# nccl.sh: the nccl backend end to end through build/chalk. Everywhere: without a GPU (or NCCL, or a
# CUDA build) dist.run(1, fn, {backend="nccl"}) must fail naming what is missing. Where libnccl loads
# (no GPU needed): the unique id reaches every rank of chalk --nproc N --backend nccl over the
# launcher's pipe and over MPI. With GPUs: tests/dist/nccl_one_rank.lua under dist.run on one GPU (and
# all G), and under chalk --nproc G --backend nccl on all G GPUs. Every part that cannot run says
# SKIPPED and why.
CHALK=${CHALK:-build/chalk}
export NCCL_NVLS_ENABLE=0
fail=0
status=$("$CHALK" -e 'local ok, why = require("chalk.dist").available("nccl"); print((ok and "yes " or "no ") .. why)' 2>&1)
case $status in
yes*) gpus=$("$CHALK" -e 'print(require("chalk").cuda.device_count())') ;;
no*)
  why=${status#no }
  out=$("$CHALK" -e 'require("chalk.dist").run(1, function() end, {backend = "nccl"})' 2>&1)
  if [ $? = 0 ] || ! echo "$out" | grep -q "dist.run: .*\(needs a CUDA GPU\|NCCL is not available\|built without\)"; then
    echo "check-dist: FAILED: dist.run on nccl without a GPU should say what is missing, said: $out"; fail=1
  else
    echo "nccl absent: dist.run says: $(echo "$out" | grep -m1 -o 'dist.run: .*' | cut -c1-150)"
  fi
  gpus=0 ;;
*) echo "check-dist: FAILED: chalk could not answer dist.available(\"nccl\"): $status"; exit 1 ;;
esac

# CHALK_NCCL names the library: when it is not there, the launcher says so (and tries nothing else).
out=$(CHALK_NCCL=/nonexistent/libnccl.so.2 "$CHALK" --nproc 2 --backend nccl tests/dist/nccl_bootstrap.lua 2>&1)
if [ $? = 0 ] || ! echo "$out" | grep -q "NCCL is not available: /nonexistent/libnccl.so.2: \|built without CUDA"; then
  echo "check-dist: FAILED: CHALK_NCCL=/nonexistent/libnccl.so.2 should be named in the error, said: $out"; fail=1
else
  echo "nccl missing: chalk --nproc 2 --backend nccl says: $(echo "$out" | head -1 | cut -c1-120)"
fi

# The id exchange: every rank prints the same hash of the same 128 bytes.
ids() { # $1: N, rest: how to launch
  n=$1; shift
  out=$(env "$@" timeout 120 "$CHALK" --nproc "$n" --backend nccl tests/dist/nccl_bootstrap.lua 2>&1)
  rc=$?
  hashes=$(echo "$out" | sed -n "s/^nccl id: rank [0-9]* of $n, 128 bytes, hash //p" | sort -u)
  if [ $rc != 0 ] || [ "$(echo "$out" | grep -c '^nccl id: ')" != "$n" ] || [ "$(echo "$hashes" | wc -l)" != 1 ]; then
    echo "check-dist: FAILED: the NCCL id exchange on $n ranks ($*) (rc $rc):"; echo "$out" | tail -8; fail=1
  else
    echo "nccl id exchange ($*): $n ranks got the same 128-byte id (hash $hashes)"
  fi
}
if nccl=$("$CHALK" -e 'print(pcall(require("chalk.dist_core").nccl_unique_id) and "loads" or "")' 2>&1) &&
   [ "$nccl" = loads ]; then
  ids 3 CHALK_LAUNCHER=pipe
  if command -v mpirun >/dev/null 2>&1 && "$CHALK" -e 'os.exit(require("chalk.dist").available() and 0 or 1)'; then
    ids 2 CHALK_LAUNCHER=mpi
  else
    echo "nccl id exchange over MPI SKIPPED: chalk built without MPI, or no mpirun"
  fi
else
  echo "nccl id exchange SKIPPED: no NCCL unique id here: $("$CHALK" -e 'print(select(2, pcall(require("chalk.dist_core").nccl_unique_id)))' 2>&1 | head -1)"
fi

if [ "$gpus" -ge 1 ] 2>/dev/null; then
  run() { # $1: label, rest: command
    label=$1; shift
    out=$(timeout 300 "$@" 2>&1)
    rc=$?
    echo "$out" | grep "^nccl: rank\|^nccl ddp: rank"
    if [ $rc != 0 ] || ! echo "$out" | grep -q "checks passed\|max diff"; then
      echo "check-dist: FAILED: $label (rc $rc):"; echo "$out" | tail -15; fail=1
    fi
  }
  run "dist.run(1, ..., {backend=nccl})" "$CHALK" tests/dist/nccl_one_rank.lua
  run "DDP on dist.run(1, ..., {backend=nccl})" "$CHALK" tests/dist/nccl_ddp.lua
  run "chalk --nproc $gpus --backend nccl (pipe)" env CHALK_LAUNCHER=pipe "$CHALK" --nproc "$gpus" --backend nccl tests/dist/nccl_one_rank.lua
  if [ "$gpus" -ge 2 ]; then
    run "dist.run($gpus, ..., {backend=nccl})" "$CHALK" tests/dist/nccl_one_rank.lua "$gpus"
    run "DDP on chalk --nproc $gpus --backend nccl" env CHALK_LAUNCHER=pipe "$CHALK" --nproc "$gpus" --backend nccl tests/dist/nccl_ddp.lua
  fi
else
  echo "nccl GPU tests SKIPPED: ${why:-no GPU}"
fi
[ $fail = 0 ] && echo "check-dist: nccl tests passed (those that could run here)"
exit $fail
