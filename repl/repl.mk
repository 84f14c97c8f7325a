# repl/repl.mk: the chalk executable (Readline REPL, scripts, lessons, pictures) and its tmux tests.
#
#   make build/chalk               the executable, linked with the real binding (lua/)
#   make check-repl                drive build/chalk through tmux (tests/repl/*.sh)
#   make check-repl-standalone     the same against a stand-in binding (repl/standalone.c);
#                                  a development aid for repl/ alone, not part of `all`

REPL_SRC := repl/main.c repl/blas_env.c repl/repl.c repl/complete.c repl/meta.c repl/lesson.c repl/picture.c \
  repl/launch.c repl/launch_nccl.c repl/serve.c repl/serve_log.c repl/serve_tee.c repl/serve_http.c repl/transcript.c
# The lecture page (repl/web/) is compiled in like the lesson runner: chalk --serve needs no files.
REPL_WEB := page_html page_css page_js
REPL_OBJ := $(REPL_SRC:%.c=$(BUILD)/%.o) $(BUILD)/repl/lesson_lua.o $(REPL_WEB:%=$(BUILD)/repl/web_%.o)
# libmicrohttpd (Debian's libmicrohttpd-dev, installed by make deps) serves the page.
MHD_CFLAGS = $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS = $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
REPL_CFLAGS = $(CFLAGS_COMMON) $(LUA_CFLAGS) $(MHD_CFLAGS) -Irepl
REPL_SYSLIBS = $(LUA_LIBS) -lreadline $(MHD_LIBS) -lpthread
# libchalk_viz.a joins the link once viz/ has a build fragment.
REPL_CHALK_LIBS := $(BUILD)/libchalk_lua.a $(if $(wildcard viz/viz.mk),$(BUILD)/libchalk_viz.a) \
  $(BUILD)/libchalk.a

$(BUILD)/repl/%.o: repl/%.c
	@mkdir -p $(dir $@)
	$(CC) $(REPL_CFLAGS) -c $< -o $@

# A file compiled in as a byte array NAME[] (and NAME_len), so chalk works from any directory:
# $(call embed,SOURCE,NAME) is the recipe that writes the C file $@.
define embed
	@mkdir -p $(dir $@)
	@{ echo '/* generated from $(1) by repl/repl.mk: do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const unsigned char $(2)[];'; \
	  echo 'extern const size_t $(2)_len;'; \
	  echo 'const unsigned char $(2)[] = {'; \
	  od -An -v -tx1 $(1) | sed -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g'; \
	  echo '};'; \
	  echo 'const size_t $(2)_len = sizeof $(2);'; } > $@.tmp && mv $@.tmp $@
endef

$(BUILD)/repl/lesson_lua.c: repl/lesson.lua repl/repl.mk
	$(call embed,$<,lesson_lua)

$(BUILD)/repl/web_page_%.c: repl/web/page.% repl/repl.mk
	$(call embed,$<,web_page_$*)

$(BUILD)/repl/%.o: $(BUILD)/repl/%.c
	$(CC) $(CFLAGS_COMMON) -c $< -o $@

# core/dist/dist.mk sets DIST_MPI_OBJ/LIBS (the MPI transport) when OpenMPI is found, else empty.
$(BUILD)/chalk: $(REPL_OBJ) $(REPL_CHALK_LIBS) $(DIST_MPI_OBJ)
	$(CC) $(OPT) $(SAN) -o $@ $(REPL_OBJ) $(DIST_MPI_OBJ) $(REPL_CHALK_LIBS) $(LUA_LIBS) $(GV_LIBS) -lreadline \
	  $(MHD_LIBS) $(CORE_LIBS) $(DIST_MPI_LIBS)

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

# The live page's tests (check-web): HTTP and headless chromium.
-include tests/web/web.mk
