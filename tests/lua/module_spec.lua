-- module_spec.lua: the chalk module as other code sees it: require from stock lua5.4, the
-- contract with the REPL (__methods, __fields, out_dir, memory_stats), built-in modules, and
-- extending chalk.Tensor from Lua.
local chalk = require "chalk"

describe("the chalk module", function()
  it("loads in stock lua5.4 with LUA_CPATH and prints a tensor", function()
    local cpath = os.getenv("LUA_CPATH")
    assert.truthy(cpath, "LUA_CPATH must point at the build directory")
    local cmd = ("LUA_CPATH='%s' lua5.4 -e 'local chalk = require \"chalk\"; print(chalk.ones(2,2))' 2>&1")
      :format(cpath)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local ok = p:close()
    assert.is_true(ok, out)
    assert.are.equal("tensor([[1., 1.],\n        [1., 1.]], shape={2,2}, dtype=f32, device=cpu)\n", out)
  end)

  it("is the same table when opened twice in one state", function()
    local again = package.loadlib(package.searchpath("chalk", package.cpath), "luaopen_chalk")()
    assert.are.equal(chalk, again)
  end)

  it("gives the tensor metatable __methods and __fields for completion", function()
    local mt = getmetatable(chalk.ones(1))
    assert.are.equal("function", type(mt.__index))
    assert.are.equal(chalk.Tensor, mt.__methods)
    assert.are.equal("function", type(mt.__methods.sum))
    assert.are.equal("function", type(mt.__methods.backward))
    local fields = {}
    for _, f in ipairs(mt.__fields) do fields[f] = true end
    for _, f in ipairs { "shape", "dtype", "device", "grad", "requires_grad", "name", "T", "is_leaf", "grad_fn" } do
      assert.is_true(fields[f], f)
    end
  end)

  it("finds methods that Lua code adds to chalk.Tensor", function()
    function chalk.Tensor.double_it(x) return x * 2 end
    assert.are.same({ 2, 4 }, chalk.tensor({ 1, 2 }):double_it():totable())
    chalk.Tensor.double_it = nil
  end)

  it("has out_dir, version, dtypes and is_tensor", function()
    assert.are.equal("string", type(chalk.out_dir))
    assert.are.equal("string", type(chalk.version))
    assert.are.same({ "f32", "f64", "f16", "bf16", "i32", "i64", "i8", "bool" }, chalk.dtypes)
    assert.is_true(chalk.is_tensor(chalk.ones(1)))
    assert.is_false(chalk.is_tensor({}))
  end)

  it("registers its Lua modules in package.preload as chalk.<name>", function()
    assert.are.equal("function", type(package.preload["chalk.core"]))
    assert.are.equal("function", type(chalk.no_grad))
  end)

  it("lists the op table", function()
    local ops = chalk.ops()
    local set = {}
    for _, name in ipairs(ops) do set[name] = true end
    assert.is_true(set.matmul and set.add and set.sum and set.softmax)
    local text = tostring(ops)
    assert.truthy(text:find("^op%s+arity%s+devices%s+backward"))
    assert.truthy(text:find("\nmatmul ", 1, true))
  end)
end)
