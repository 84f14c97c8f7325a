-- viz_after_backward_spec.lua: issue 15's lecture order (forward, backward, then draw) and
-- viz.graph of a captured Graph without options.
local chalk = require "chalk"
local viz = chalk.viz

local function read(p)
  local f = assert(io.open(p))
  local s = f:read("a")
  f:close()
  return s
end

describe("viz after backward", function()
  it("draws every node with the leaves' gradients and marks freed saved tensors", function()
    local x = chalk.randn(4, 3)
    local w1, w2 = chalk.randn(3, 5):requires_grad_(), chalk.randn(5, 1):requires_grad_()
    local loss = x:matmul(w1):relu():matmul(w2):sum()
    loss:backward()
    collectgarbage()
    local d = read(viz.graph(loss, { format = "dot" }))
    assert.are.equal(7, select(2, d:gsub('%[id="n', "")))
    assert.truthy(d:find("saved tensor freed", 1, true))
    assert.truthy(d:find(viz.colors.freed, 1, true))
    local b = read(viz.graph(loss, { backward = true, format = "dot" }))
    assert.truthy(b:find("into .grad", 1, true))
    local _, k, n = viz.step(loss, { format = "dot" })
    assert.are.equal(1, k)
    assert.are.equal(9, n)
    assert.has_error(function() loss:backward() end)
  end)

  it("draws a captured Graph without an options table", function()
    local g = chalk.capture(function(a) return (a * 2):relu() end, chalk.randn(4, 4))
    local p = viz.graph(g)
    assert.truthy(p:match("%.png$"))
  end)

  it("names the freed style in the palette", function()
    assert.truthy(viz.colors.meaning.freed:find("freed", 1, true))
  end)
end)
