-- chart_spec.lua: chalk.chart (loss curves, storages with views) and chalk.storage_info.
package.path = "tests/lua/?.lua;" .. package.path
local chalk = require "chalk"
local chart = require "chalk.chart"
local ref = require "torch_ref"

describe("chalk.storage_info", function()
  it("gives a view's offset into the storage it shares, and the storage's values", function()
    local x = chalk.arange(1, 13):float():view(3, 4)
    local z = x:narrow(2, 2, 2)
    local xi, zi = chalk.storage_info(x), chalk.storage_info(z)
    assert.are.equal(xi.id, zi.id)
    assert.are.equal(0, xi.offset)
    assert.are.equal(1, zi.offset)
    assert.are.equal(12, zi.size)
    assert.are.equal(4, zi.itemsize)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, zi.values)
    assert.are.equal(8, chalk.storage_info(x[3]).offset)
    assert.are_not.equal(xi.id, chalk.storage_info(x:clone()).id)
    assert.is_nil(chalk.storage_info(chalk.zeros(100), 64).values)
  end)
end)

describe("chart.storage", function()
  it("marks each view's cells with the element that reads them", function()
    local x = chalk.arange(1, 7):float():view(2, 3)
    local dot = chart.storage_dot({ { "x", x }, { "y", x:transpose(1, 2) } })
    assert.truthy(dot:find("shape {3,2} stride {1,3} offset 0", 1, true), dot)
    assert.truthy(dot:find("shape {2,3} stride {3,1} offset 0", 1, true))
    -- storage cell 1 (offset 1, value 2) is x(1,2) and y(2,1)
    assert.truthy(dot:find("label=<1,2>", 1, true) and dot:find("label=<2,1>", 1, true))
    local b = chalk.tensor { 1, 2 }
    local bb = b:expand(3, 2)
    local dot2 = chart.storage_dot({ { "bb", bb } })
    -- stride 0: three readers of each cell, drawn one above the other
    for _, r in ipairs { "1,1", "2,1", "3,1", "1,2", "2,2", "3,2" } do
      assert.truthy(dot2:find("label=<" .. r .. ">", 1, true), dot2)
    end
  end)

  it("refuses views of different storages and storages too large to draw", function()
    assert.has_error(function() chart.storage_dot({ { "a", chalk.zeros(2) }, { "b", chalk.zeros(2) } }) end)
    assert.has_error(function() chart.storage_dot(chalk.zeros(1000)) end)
  end)

  it("renders a PNG through viz", function()
    local dir = ref.tmpdir()
    local path = chart.storage({ { "x", chalk.ones(2, 2) } }, { file = dir .. "/s.png" })
    local f = assert(io.open(path, "rb"))
    assert.are.equal("\137PNG", f:read(4))
    f:close()
    ref.rmdir(dir)
  end)
end)

describe("chart.line", function()
  it("draws one or several series with a title and axes", function()
    local ys = {}
    for i = 1, 1000 do ys[i] = 2.3 * math.exp(-i / 200) + 0.3 end
    local dot = chart.line_dot(ys, { title = "loss", xlabel = "step" })
    assert.truthy(dot:find("label=<loss>", 1, true))
    assert.truthy(dot:find("label=<step>", 1, true))
    local edges = select(2, dot:gsub(" %-%- ", ""))
    assert.are.equal(299, edges) -- 1000 points averaged into 300 bins
    local two = chart.line_dot({ train = { 3, 2, 1 }, test = { 3, 2.5, 2 } })
    assert.truthy(two:find("label=<train>", 1, true) and two:find("label=<test>", 1, true))
    local dir = ref.tmpdir()
    local path = chart.line({ 1, 2, 3 }, { file = dir .. "/l.svg" })
    assert.truthy(io.open(path):read("a"):find("<svg", 1, true))
    ref.rmdir(dir)
  end)
end)
