# bench/gpu/gpu.mk: `make bench-gpu`, chalk against PyTorch and cuBLAS on one GPU (issue 7, workloads
# 6-8; bench/gpu/run_gpu.py says how each is timed). Needs a CUDA GPU, chalk built with nvcc and a
# python3 with PyTorch (CUDA); a part that cannot run says so in the table instead of a number.
# Results: bench/results/gpu-bench-<GPU>-<date>.md. BENCH_ROUNDS=N sets the alternating rounds.
#
#   make bench-gpu                      everything, results into bench/results/
#   make bench-gpu PYTHON_GPU=/opt/torch/.venv/bin/python3
#   bench/gpu/make_bundle.sh; bench/gpu/device_run.sh   the same on a machine that has a GPU and
#                                       PyTorch but no build tools, Lua or Graphviz (a carried bundle)

PYTHON_GPU ?= python3

bench-gpu: all
	$(PYTHON_GPU) bench/gpu/run_gpu.py --chalk $(BUILD)/chalk --gpu-bench $(BUILD)/bench/gpu/gpu_bench \
	  --command "make bench-gpu"

.PHONY: bench-gpu
