-- quant_spec.lua: chalk.quant (lua/chalk/quant*.lua over core/ops/ops_quant.c): the round-trip law
-- on every element for every format and weight kind, what a QTensor prints, bytes per format,
-- quant.linear against dequantize-then-matmul and its gradient, quantize_model (swaps, still runs,
-- allocator bytes), the matmul table, the two pictures, and the errors.
local chalk = require "chalk"
local S = require "support"
local ref = require "torch_ref"
local quant, nn = chalk.quant, chalk.nn

local FORMATS = { "int8", "int8_channel", "q4", "q8" }

local function maxdiff(a, b) return (a - b):abs():max():item() end

-- normal, heavy-tailed (normal / |normal|: Cauchy-like), with outliers (1% x 100)
local function weights(kind, rows, cols)
  local w = chalk.randn({ rows, cols }) * 0.05
  if kind == "heavy" then w = w / (chalk.randn({ rows, cols }):abs() + 0.05) end
  if kind == "outliers" then w = w * ((chalk.rand({ rows, cols }):lt(0.01)):to("f32") * 99 + 1) end
  return w
end

describe("quant.quantize", function()
  for _, fmt in ipairs(FORMATS) do
    for _, kind in ipairs { "normal", "heavy", "outliers" } do
      it(("keeps |w - code*d| <= d/2 on every element (%s, %s, sizes not a multiple of 32)"):format(fmt, kind), function()
        chalk.manual_seed(11)
        for _, shape in ipairs { { 1, 1 }, { 3, 7 }, { 5, 33 }, { 9, 100 }, { 2, 1000 } } do
          local st = quant.check(weights(kind, shape[1], shape[2]), fmt)
          assert.are.equal(0, st.violations, ("%s %dx%d: max error %g, bound %g"):format(fmt, shape[1], shape[2],
            st.max_err, st.max_bound))
          assert.is_true(st.max_err <= st.max_bound * (1 + 1e-6))
        end
      end)
    end
  end

  it("prints its format, bits per weight, shape and bytes", function()
    local q = quant.quantize(chalk.randn({ 8, 64 }), "q4")
    assert.are.equal("QTensor(q4, 4.5 bits/weight, shape [8,64], 288 bytes, cpu)", tostring(q))
    assert.are.equal("q4", q.format)
    assert.are.same({ 8, 64 }, q.shape)
    assert.are.equal(4.5, q.bits)
    assert.are.equal(512, q.numel)
    assert.are.equal("i8", q.data.dtype)
  end)

  it("costs params x bits / 8 bytes for blocks of 32 (a partial block costs a whole one)", function()
    local w = chalk.randn({ 16, 128 })
    assert.are.equal(16 * 128 * 4.5 / 8, quant.quantize(w, "q4").bytes)
    assert.are.equal(16 * 128 * 8.5 / 8, quant.quantize(w, "q8").bytes)
    assert.are.equal(4 + 16 * 128, quant.quantize(w, "int8").bytes)
    assert.are.equal(16 * 4 + 16 * 128, quant.quantize(w, "int8_channel").bytes)
    assert.are.equal(2 * 18, quant.quantize(chalk.randn({ 1, 33 }), "q4").bytes)
  end)

  it("round-trips a 1-D weight and keeps its shape", function()
    local w = chalk.randn({ 45 })
    local d = quant.dequantize(quant.quantize(w, "q8"))
    assert.are.same({ 45 }, d.shape)
    assert.is_true(maxdiff(d, w) < 0.05)
  end)

  it("states the law of each format", function()
    assert.truthy(quant.law("q4"):find("d = max|w| / 7", 1, true))
    assert.truthy(quant.law("int8"):find("scale = 127 / max|w|", 1, true))
    assert.truthy(quant.law("q8"):find("|w - code*d| <= d/2", 1, true))
  end)

  it("refuses bad formats, dtypes, shapes and values with clear errors", function()
    S.error_matching(function() quant.quantize(chalk.randn({ 2, 3 }), "q3") end, "quant.quantize", '"q3"', "q4")
    S.error_matching(function() quant.quantize(chalk.ones({ 2, 3 }, { dtype = "i32" }), "q4") end, "f32 or f64", "i32")
    S.error_matching(function() quant.quantize(chalk.randn({ 2, 3, 4 }), "int8") end, "1-D or 2-D", "[2,3,4]")
    S.error_matching(function() quant.quantize(chalk.tensor({ 1, 0 / 0 }), "q8") end, "element 2", "finite")
    S.error_matching(function() quant.quantize({ 1, 2 }, "q4") end, "argument 1 must be a tensor")
    S.error_matching(function() quant.dequantize(chalk.randn({ 2 })) end, "quantized tensor", "a tensor")
    local q = quant.quantize(chalk.randn({ 4, 40 }), "q4")
    S.error_matching(function() quant.linear(chalk.randn({ 2, 39 }), q) end, "qmatmul", "last dim must be 40")
  end)
end)

describe("quant.linear", function()
  for _, fmt in ipairs(FORMATS) do
    it("equals x @ dequantize(q)^T + b, batch 1 to 40, with batch dims (" .. fmt .. ")", function()
      chalk.manual_seed(3)
      for _, s in ipairs { { 1, 7, 33 }, { 3, 20, 100 }, { 40, 9, 70 } } do
        local w, b = chalk.randn({ s[2], s[3] }), chalk.randn({ s[2] })
        local q = quant.quantize(w, fmt)
        local x = chalk.randn({ 2, s[1], s[3] })
        local want = x:matmul(quant.dequantize(q).T) + b
        assert.is_true(maxdiff(quant.linear(x, q, b), want) < 1e-4)
      end
    end)
  end

  it("x:matmul(q) is x @ W through the qmatmul row, for every format and awkward sizes", function()
    chalk.manual_seed(4)
    for _, fmt in ipairs(FORMATS) do
      for _, s in ipairs { { 1, 33, 7 }, { 7, 100, 1 }, { 33, 40, 9 } } do
        local w, x = chalk.randn({ s[2], s[3] }), chalk.randn({ s[1], s[2] })
        local q = quant.quantize(w, fmt)
        assert.is_true(maxdiff(x:matmul(q), x:matmul(quant.dequantize(q))) < 1e-4)
      end
    end
  end)

  it("passes the gradient to x (dx = g @ W) and not to the frozen weight", function()
    local w = chalk.randn({ 6, 50 })
    local q = quant.quantize(w, "q4")
    local x = chalk.randn({ 3, 50 }, { requires_grad = true })
    local x2 = x:detach():clone()
    x2.requires_grad = true
    quant.linear(x, q):sum():backward()
    x2:matmul(quant.dequantize(q).T):sum():backward()
    assert.is_true(maxdiff(x.grad, x2.grad) < 1e-5)
  end)
end)

describe("quant.quantize_model", function()
  it("swaps every Linear, keeps the forward close, and shrinks the allocator's parameter bytes", function()
    chalk.manual_seed(5)
    local model = nn.Sequential { nn.Linear(96, 64), nn.ReLU(), nn.Linear(64, 10) }
    local x = chalk.randn({ 4, 96 })
    local y0 = chalk.no_grad(function() return model(x) end)
    local _, rep = quant.quantize_model(model, "q8")
    assert.are.equal(2, rep.layers)
    assert.are.equal(96 * 64 + 64 * 10, rep.params)
    assert.are.equal(rep.expected_qbytes, rep.qbytes)
    -- f32 weights (4 bytes) became 8.5 bits: the biases stay
    assert.are.equal(rep.bytes_before - rep.f32_bytes + rep.qbytes, rep.bytes_after)
    assert.truthy(tostring(model):find("QLinear", 1, true))
    local y1 = chalk.no_grad(function() return model(x) end)
    assert.is_true(maxdiff(y0, y1) < 0.02)
    for name in model:named_parameters() do assert.falsy(name:find("weight", 1, true), name) end
  end)

  it("skips the paths it is told to and refuses a non-module", function()
    local model = nn.Sequential { nn.Linear(8, 8), nn.Linear(8, 2) }
    local _, rep = quant.quantize_model(model, "int8", { skip = { "2" } })
    assert.are.same({ "1" }, rep.paths)
    S.error_matching(function() quant.quantize_model({}, "q4") end, "an nn module")
    S.error_matching(function() quant.quantize_model(model, "fp4") end, "format must be one of")
  end)
end)

describe("quant.matmul_table", function()
  it("times f32 and every format at each batch and reports the bytes each reads", function()
    local t = quant.matmul_table { n = 64, k = 96, batches = { 1, 16 }, reps = 1 }
    assert.are.equal(10, #t)
    assert.are.equal("f32", t[1].format)
    assert.are.equal(4 * (96 + 64) + 4 * 64 * 96, t[1].bytes)
    assert.are.equal(4 * (96 + 64) + 64 * 3 * 18, t[4].bytes) -- q4: 3 blocks per row of 96
    for _, r in ipairs(t) do assert.is_true(r.ms > 0 and r.speedup > 0) end
    assert.truthy(tostring(t):find("int8_channel", 1, true))
  end)
end)

describe("quant pictures", function()
  it("draw the histogram with a block's levels, the per-block error and the bits chart", function()
    local dir = ref.tmpdir()
    chalk.manual_seed(2)
    local w = chalk.randn({ 16, 70 }) * 0.1
    local dot = quant.histogram_dot(w, "q4", { block = { 2, 3 } })
    assert.truthy(dot:find("levels code x d", 1, true))
    assert.truthy(dot:find("its bound d / 2", 1, true))
    local bits = quant.bits_chart_dot({ { bits = 4.5, value = 0.8, label = "q4" }, { bits = 8, value = 0.84, label = "int8" },
      { bits = 32, value = 0.85, label = "f32" } }, { ylabel = "accuracy" })
    assert.truthy(bits:find("f32 (32 bits/weight)", 1, true))
    for _, path in ipairs { quant.histogram(w, "int8_channel", { file = dir .. "/h.png" }),
      quant.bits_chart({ { bits = 4.5, value = 3.1 }, { bits = 8.5, value = 2.9 } }, { file = dir .. "/b.png" }) } do
      local f = assert(io.open(path, "rb"))
      assert.are.equal("\137PNG", f:read(4))
      f:close()
    end
    ref.rmdir(dir)
    S.error_matching(function() quant.histogram_dot(w, "q4", { block = { 17, 1 } }) end, "row in 1..16")
    S.error_matching(function() quant.bits_chart_dot({ { bits = "4" } }) end, "bits = number")
  end)
end)
