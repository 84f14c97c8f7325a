-- sim_spec.lua: sim.systolic (lesson 18) through its Lua surface: the product against chalk's
-- matmul on random and awkward shapes for every dataflow, integers exactly and floats to 1e-6,
-- the cycle and fold counts against grid:law, the frames and pictures, and errors.
local chalk = require "chalk"
local sim = require "chalk.sim"

local function f64_diff(P, A, B)
  return (P:to("f64") - A:to("f64"):matmul(B:to("f64"))):abs():max():item()
end

describe("sim.systolic", function()
  it("multiplies exactly on random and awkward shapes, every dataflow", function()
    chalk.manual_seed(1)
    local shapes = { { 1, 1, 1, 1, 1 }, { 4, 4, 1, 1, 1 }, { 4, 4, 7, 5, 9 }, { 3, 5, 10, 7, 11 }, { 8, 8, 3, 17, 2 } }
    for _, df in ipairs { "weight", "input", "output" } do
      for _, s in ipairs(shapes) do
        local R, C, M, K, N = table.unpack(s)
        local A, B = chalk.randint(-9, 10, { M, K }), chalk.randint(-9, 10, { K, N })
        local grid = sim.systolic(R, C, { dataflow = df })
        local P, st = grid:matmul(A, B)
        assert.are.same({ M, N }, P.shape)
        assert.are.equal(0, f64_diff(P, A, B), df .. " " .. table.concat(s, "x"))
        local law = grid:law(M, K, N)
        assert.are.equal(law.folds, st.folds)
        assert.are.equal(law.cycles, st.cycles)
        assert.are.equal(M * K * N, st.macs)
      end
    end
  end)

  it("agrees with matmul to 1e-6 on floats (f32 and f64)", function()
    chalk.manual_seed(2)
    for _, dt in ipairs { "f32", "f64" } do
      local A, B = chalk.randn(13, 21, { dtype = dt }), chalk.randn(21, 6, { dtype = dt })
      local P = sim.systolic(4, 4, { dataflow = "weight" }):matmul(A, B)
      assert.are.equal(dt, P.dtype)
      assert.is_true(f64_diff(P, A, B) <= 1e-6)
    end
  end)

  it("takes 2R + C + T - 2 cycles per full fold, at utilisation T/(2R+C+T-2)", function()
    local grid = sim.systolic(8, 4, { dataflow = "output" })
    local _, st = grid:matmul(chalk.randint(0, 3, { 16, 10 }), chalk.randint(0, 3, { 10, 8 }))
    assert.are.equal(2 * 2, st.folds)
    assert.are.equal(2 * 8 + 4 + 10 - 2, st.first_fold_cycles)
    assert.are.equal(4 * (2 * 8 + 4 + 10 - 2), st.cycles)
    assert.is_true(math.abs(st.utilization - 10 / (2 * 8 + 4 + 10 - 2)) < 1e-12)
  end)

  it("draws the wavefront frames and the summary", function()
    local dir = os.getenv("CHALK_OUT") or "."
    local grid = sim.systolic(3, 3)
    local p1, p2 = grid:frames(chalk.randint(0, 4, { 4, 3 }), chalk.randint(0, 4, { 3, 3 }),
                               { file = dir .. "/sys_frames.svg", summary = dir .. "/sys_summary.svg" })
    for _, p in ipairs { p1, p2 } do
      local f = assert(io.open(p))
      assert.is_truthy(f:read("a"):find("<svg", 1, true))
      f:close()
    end
  end)

  it("names what is wrong", function()
    assert.has_error(function() sim.systolic(4, 4, { dataflow = "diagonal" }) end,
                     "sim.systolic: unknown dataflow 'diagonal' (weight, input or output)")
    local grid = sim.systolic(2, 2)
    local ok, err = pcall(grid.matmul, grid, chalk.ones(2, 3), chalk.ones(2, 3))
    assert.is_false(ok)
    assert.is_truthy(err:find("inner sizes differ", 1, true))
    ok, err = pcall(grid.matmul, grid, chalk.ones(2), chalk.ones(2, 3))
    assert.is_truthy(err:find("must be a matrix", 1, true))
  end)
end)
