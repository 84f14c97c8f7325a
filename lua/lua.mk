# lua/lua.mk: the Lua 5.4 binding.
#
#   $(BUILD)/libchalk_lua.a   the binding (lua/lchalk_*.c) and its built-in modules, for the chalk
#                             executable, which links it before libchalk.a and calls luaopen_chalk
#   $(BUILD)/chalk.so         the same as a Lua C module with libchalk inside, for stock lua5.4:
#                             LUA_CPATH='build/?.so;;' lua5.4 -e 'print(require"chalk".ones(2,2))'
#   make check-lua            the busted specs of tests/lua/ under lua5.4, against chalk.so
#
# Built-in modules: every lua/chalk/**/*.lua is embedded (as bytes, by the generator lua/embed.c)
# and put in package.preload as chalk.<path> (lua/chalk/nn.lua -> "chalk.nn"); luaopen_chalk then
# loads chalk.core, nn, optim, data, viz, profile, capture, superopt, dist, sim, serve when present. Another layer adds
# a module written in C by appending, in its own fragment:
#   LUA_C_MODULES += viz                      # it defines int luaopen_chalk_viz(lua_State *L)
#   LUA_MODULE_LIBS += $(BUILD)/libchalk_viz.a $(GV_LIBS)   # what chalk.so must link for it
# (then every link of libchalk_lua.a needs that library too, as build/chalk's already does).

LUA_SRC := $(sort $(wildcard lua/lchalk_*.c))
LUA_SRC += $(sort $(wildcard lua/lcapture*.c)) # chalk.capture and the Graph userdata (issue 8)
LUA_SRC += $(wildcard lua/lviz*.c lua/lprofile.c) # chalk.viz, chalk.profile: the Lua surface of viz/
LUA_SRC += lua/ldist.c    # chalk.dist_core, the C half of chalk.dist (issue 16)
LUA_SRC += $(wildcard lua/lsim_*.c) # chalk.systolic_core, chalk.sim_des: the C halves of sim (issues 20, 21)
LUA_OBJ := $(LUA_SRC:%.c=$(BUILD)/%.o)
LUA_MODULES := $(sort $(shell find lua/chalk -name '*.lua' 2>/dev/null))
LUA_C_MODULES ?=
LUA_C_MODULES += capture # lua/lcapture.c: luaopen_chalk_capture
LUA_C_MODULES += dist_core # lua/ldist.c: luaopen_chalk_dist_core
LUA_C_MODULES += systolic_core # lua/lsim_systolic.c: luaopen_chalk_systolic_core
LUA_C_MODULES += capture_inspect # lua/lcapture_inspect.c: luaopen_chalk_capture_inspect
LUA_C_MODULES += sim_des # lua/lsim_des.c: luaopen_chalk_sim_des
LUA_MODULE_LIBS ?=
LCHALK_CFLAGS = $(CFLAGS_COMMON) $(LUA_CFLAGS) -Icore -Ilua -Iviz
LCHALK_GEN := $(BUILD)/lua/gen/lchalk_modules.c
LCHALK_GEN_OBJ := $(BUILD)/lua/gen/lchalk_modules.o
LCHALK_MODULE_LIST := $(BUILD)/lua/gen/modules.list

$(BUILD)/lua/%.o: lua/%.c
	@mkdir -p $(dir $@)
	$(CC) $(LCHALK_CFLAGS) -c $< -o $@

# The generator runs at build time on the build machine: plain flags, no sanitizers.
$(BUILD)/lua/embed: lua/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -Wall -Wextra -Werror $< -o $@

# Rewritten only when the set of modules changes, so that adding or removing a .lua file (or a C
# module) regenerates the table even though no remaining file is newer.
$(LCHALK_MODULE_LIST): FORCE
	@mkdir -p $(dir $@)
	@echo '$(LUA_MODULES) -c $(LUA_C_MODULES)' | cmp -s - $@ || echo '$(LUA_MODULES) -c $(LUA_C_MODULES)' > $@

$(LCHALK_GEN): $(BUILD)/lua/embed $(LUA_MODULES) $(LCHALK_MODULE_LIST)
	$(BUILD)/lua/embed $@ lua/ $(LUA_MODULES) $(addprefix -c ,$(LUA_C_MODULES))

$(LCHALK_GEN_OBJ): $(LCHALK_GEN)
	$(CC) $(LCHALK_CFLAGS) -c $< -o $@

$(BUILD)/libchalk_lua.a: $(LUA_OBJ) $(LCHALK_GEN_OBJ)
	@rm -f $@
	ar rcs $@ $^

# libchalk goes in whole (every op row, and the CUDA backend's registration when it is built);
# liblua is not linked: the interpreter that loads the module provides it.
$(BUILD)/chalk.so: $(LUA_OBJ) $(LCHALK_GEN_OBJ) $(BUILD)/libchalk.a
	$(CC) -shared $(OPT) $(SAN) -o $@ $(LUA_OBJ) $(LCHALK_GEN_OBJ) \
	  -Wl,--whole-archive $(BUILD)/libchalk.a -Wl,--no-whole-archive $(LUA_MODULE_LIBS) $(CORE_LIBS)

all: $(BUILD)/libchalk_lua.a $(BUILD)/chalk.so

# busted is Debian's lua-busted: /usr/bin/busted is a script for whatever `lua` is, so it is run
# by lua5.4 explicitly (its modules exist for 5.1-5.4). Under sanitizers the interpreter is not
# instrumented, so the ASan runtime is preloaded.
LUA_TEST_ENV = LUA_CPATH='$(BUILD)/?.so;;' LUA_PATH=';;' CHALK_OUT='$(BUILD)/tests/lua/out' \
  $(if $(SAN),LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=16 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)

.PHONY: check-lua FORCE
check-lua: $(BUILD)/chalk.so
	@mkdir -p $(BUILD)/tests/lua/out
	$(LUA_TEST_ENV) lua5.4 /usr/bin/busted --lpath='tests/lua/?.lua' tests/lua

CHECKS += check-lua
