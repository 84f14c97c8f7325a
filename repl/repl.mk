# repl/repl.mk: the chalk executable (Readline REPL, scripts, lessons, pictures) and its tmux tests.
#
#   make build/chalk               the executable, linked with the real binding (lua/)
#   make check-repl                drive build/chalk through tmux (tests/repl/*.sh)
#   make check-repl-standalone     the same against a stand-in binding (repl/standalone.c);
#                                  a development aid for repl/ alone, not part of `all`

REPL_SRC := repl/main.c repl/blas_env.c repl/repl.c repl/complete.c repl/meta.c repl/lesson.c repl/picture.c \
  repl/launch.c repl/launch_nccl.c
REPL_OBJ := $(REPL_SRC:%.c=$(BUILD)/%.o) $(BUILD)/repl/lesson_lua.o
REPL_CFLAGS = $(CFLAGS_COMMON) $(LUA_CFLAGS) -Irepl
REPL_SYSLIBS = $(LUA_LIBS) -lreadline
# libchalk_viz.a joins the link once viz/ has a build fragment.
REPL_CHALK_LIBS := $(BUILD)/libchalk_lua.a $(if $(wildcard viz/viz.mk),$(BUILD)/libchalk_viz.a) \
  $(BUILD)/libchalk.a

$(BUILD)/repl/%.o: repl/%.c
	@mkdir -p $(dir $@)
	$(CC) $(REPL_CFLAGS) -c $< -o $@

# The lesson runner is compiled in as a byte array, so chalk works from any directory.
$(BUILD)/repl/lesson_lua.c: repl/lesson.lua repl/repl.mk
	@mkdir -p $(dir $@)
	@{ echo '/* generated from repl/lesson.lua by repl/repl.mk: do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const unsigned char lesson_lua[];'; \
	  echo 'extern const size_t lesson_lua_len;'; \
	  echo 'const unsigned char lesson_lua[] = {'; \
	  od -An -v -tx1 $< | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t lesson_lua_len = sizeof lesson_lua;'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/repl/lesson_lua.o: $(BUILD)/repl/lesson_lua.c
	$(CC) $(CFLAGS_COMMON) -c $< -o $@

# core/dist/dist.mk sets DIST_MPI_OBJ/LIBS (the MPI transport) when OpenMPI is found, else empty.
$(BUILD)/chalk: $(REPL_OBJ) $(REPL_CHALK_LIBS) $(DIST_MPI_OBJ)
	$(CC) $(OPT) $(SAN) -o $@ $(REPL_OBJ) $(DIST_MPI_OBJ) $(REPL_CHALK_LIBS) $(LUA_LIBS) $(GV_LIBS) -lreadline \
	  $(CORE_LIBS) $(DIST_MPI_LIBS)

# Until lua/ has its fragment there is no binding to link, so `all` leaves chalk out.
ifneq ($(wildcard lua/lua.mk),)
all: $(BUILD)/chalk
endif

$(BUILD)/repl-standalone/standalone.o: repl/standalone.c
	@mkdir -p $(dir $@)
	$(CC) $(REPL_CFLAGS) -DCHALK_REPL_STANDALONE -c $< -o $@

$(BUILD)/repl-standalone/chalk: $(REPL_OBJ) $(BUILD)/repl-standalone/standalone.o
	$(CC) $(OPT) $(SAN) -o $@ $^ $(REPL_SYSLIBS) -lm

.PHONY: check-repl check-repl-standalone
check-repl: $(BUILD)/chalk
	@CHALK=$(BUILD)/chalk sh tests/repl/run.sh

check-repl-standalone: $(BUILD)/repl-standalone/chalk
	@CHALK=$(BUILD)/repl-standalone/chalk sh tests/repl/run.sh

CHECKS += check-repl
