# core/core.mk: libchalk, plain C11 (no Lua, Graphviz or readline here).
CORE_SRC := $(filter-out core/dist/mpi/%,$(shell find core -name '*.c' | sort))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(BLAS_CFLAGS) -Icore -c $< -o $@

# The op loops are written plainly (out[i] = f(a[i], b[i]) over strided pointers). GCC 12's -O2
# vectorises only loops that need no runtime overlap check, which left every one of them scalar
# (relu and mul_scalar were a fifth of an MLP training step); the dynamic cost model vectorises
# them behind that check (SSE2 at the default -march). No effect at -O1 (sanitizer builds).
CORE_VEC_OBJ := $(addprefix $(BUILD)/core/,ops/ops_elementwise.o ops/ops_reduce.o ops/ops_nn.o ops/ops_conv.o ops/ops_pool.o cpu/softmax.o cpu/quant.o tensor/tensor.o)
$(CORE_VEC_OBJ): CFLAGS_COMMON += -fvect-cost-model=dynamic
$(CORE_VEC_OBJ): core/core.mk

$(BUILD)/libchalk.a: $(CORE_OBJ) $(KERNELS_OBJ)
	@rm -f $@
	ar rcs $@ $^

all: $(BUILD)/libchalk.a

-include core/dist/dist.mk
