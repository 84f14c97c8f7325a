# core/dist/dist.mk: the MPI transport (only where OpenMPI is found) and the dist tests.
#
#   $(DIST_MPI_OBJ)   core/dist/mpi/transport_mpi.o, built with mpicc's flags and linked into
#                     build/chalk (repl/repl.mk) when MPI is present; empty otherwise, and then
#                     dist.init() and chalk --nproc say what to install
#   make check-dist   the C tests of every algorithm on sim (tests/dist/test_dist_sim.c), the Lua
#                     tests of dist.run (tests/dist/*_spec.lua), and the mpi tests
#                     (tests/dist/mpi.sh: chalk --nproc 2 and 4), skipped with the reason without MPI;
#                     under sanitizers OpenMPI's own process-lifetime allocations are not reported
#   make bench-dist   all_reduce algbw/busbw of chalk's ring vs MPI_Allreduce on 4 processes

HAVE_MPI := $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1 || (mpicc --showme:link >/dev/null 2>&1 && echo 1))
ifeq ($(HAVE_MPI),1)
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || mpicc --showme:compile)
MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null || mpicc --showme:link)
DIST_MPI_OBJ := $(BUILD)/core/dist/mpi/transport_mpi.o
DIST_MPI_LIBS := $(MPI_LIBS)

$(DIST_MPI_OBJ): core/dist/mpi/transport_mpi.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(MPI_CFLAGS) -Icore -c $< -o $@
else
DIST_MPI_OBJ :=
DIST_MPI_LIBS :=
endif

DIST_TEST_BIN := $(BUILD)/tests/dist/test_dist_sim

$(DIST_TEST_BIN): tests/dist/test_dist_sim.c $(BUILD)/libchalk.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -Icore $< $(BUILD)/libchalk.a -lcriterion $(CORE_LIBS) -o $@

.PHONY: check-dist bench-dist
check-dist: $(DIST_TEST_BIN) $(BUILD)/chalk.so $(BUILD)/chalk
	$(TEST_ENV) $(DIST_TEST_BIN) $(TEST_FLAGS)
	@mkdir -p $(BUILD)/tests/lua/out
	$(LUA_TEST_ENV) lua5.4 /usr/bin/busted --lpath='tests/lua/?.lua' --pattern=_spec tests/dist
	@CHALK=$(BUILD)/chalk HAVE_MPI=$(HAVE_MPI) $(if $(SAN),ASAN_OPTIONS=detect_leaks=0) sh tests/dist/mpi.sh

CHECKS += check-dist

bench-dist: $(BUILD)/chalk
	@HAVE_MPI=$(HAVE_MPI) CHALK=$(BUILD)/chalk sh bench/dist/run.sh
