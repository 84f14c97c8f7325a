# core/core.mk: libchalk, plain C11 (no Lua, Graphviz or readline here).
CORE_SRC := $(wildcard core/*.c core/cpu/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(BLAS_CFLAGS) -Icore -c $< -o $@

$(BUILD)/libchalk.a: $(CORE_OBJ) $(KERNELS_OBJ)
	@rm -f $@
	ar rcs $@ $^

all: $(BUILD)/libchalk.a
