# bench/bench.mk: `make bench` runs chalk against PyTorch and raw OpenBLAS on the CPU (bench/README.md).
$(BUILD)/bench/sgemm_raw: bench/cpu/sgemm_raw.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(BLAS_CFLAGS) $< -o $@ $(BLAS_LIBS) -lm

bench: all $(BUILD)/bench/sgemm_raw
	/usr/bin/python3 bench/cpu/run_cpu.py

# `make bench-sim`: 10^5 jobs through sim.cluster per policy, with a loose time bound (bench/sim/).
bench-sim: $(BUILD)/chalk
	$(BUILD)/chalk bench/sim/cluster.lua
