-- viz_colors_spec.lua: chalk.viz.colors (the one palette, viz/palette.h) and chalk.viz.canvas,
-- the chart canvas every Lua picture draws on.
local chalk = require "chalk"
local viz = chalk.viz

describe("viz.colors", function()
  it("maps each name to #rrggbb with a meaning, a tint and an ink", function()
    assert.is_true(#viz.colors.names >= 20)
    for _, name in ipairs(viz.colors.names) do
      assert.matches("^#%x%x%x%x%x%x$", viz.colors[name], 1, false, name)
      assert.matches("^#%x%x%x%x%x%x$", viz.colors.tint[name])
      assert.matches("^#%x%x%x%x%x%x$", viz.colors.ink[name])
      assert.is_true(#viz.colors.meaning[name] > 5, name)
    end
    assert.are.equal("#f28e2b", viz.colors.forward)
    assert.truthy(viz.colors.meaning.backward:find("backward", 1, true))
  end)

  it("gives one meaning per colour: no two names share a hex or a meaning", function()
    local hex, meaning = {}, {}
    for _, name in ipairs(viz.colors.names) do
      assert.is_nil(hex[viz.colors[name]], name .. " repeats " .. tostring(hex[viz.colors[name]]))
      assert.is_nil(meaning[viz.colors.meaning[name]], name)
      hex[viz.colors[name]], meaning[viz.colors.meaning[name]] = name, name
    end
  end)

  it("names the phases every picture shares", function()
    for _, name in ipairs { "forward", "backward", "recompute", "optimizer", "parameter", "input" } do
      assert.is_string(viz.colors[name])
    end
  end)
end)

describe("viz.canvas", function()
  it("writes palette colours for names and refuses colours outside the table", function()
    local c = viz.canvas()
    c:rect(0, 0, 10, 10, "forward", "backward:ink", "a tip")
    c:text(5, 5, "a <label>", 10, "left", "title", true)
    c:line({ 0, 10, 20 }, { 0, 5, 0 }, "series1", 1.5)
    c:point(10, 5, "heat:1")
    local x = c:legend(0, 20, { "forward", "backward:tint" }, { "fwd" })
    assert.is_true(x > 0)
    local dot = c:dot()
    assert.truthy(dot:find(viz.colors.forward, 1, true))
    assert.truthy(dot:find(viz.colors.ink.backward, 1, true))
    assert.truthy(dot:find(viz.colors.tint.backward, 1, true))
    assert.truthy(dot:find(viz.colors.heat_hi, 1, true), "heat:1 is the top of the scale")
    assert.truthy(dot:find("a &lt;label&gt;", 1, true))
    assert.truthy(dot:find("<b>a &lt;label&gt;</b>", 1, true))
    assert.truthy(dot:find(viz.colors.meaning.backward, 1, true), "a legend without a label shows the meaning")
    assert.are.equal(2, select(2, dot:gsub(" %-%- ", "")))
    assert.has_error(function() c:rect(0, 0, 1, 1, "#ff0000") end)
    assert.has_error(function() c:text(0, 0, "x", 10, "left", "chartreuse") end)
    assert.has_error(function() c:legend(0, 0, { "forward:glow" }) end)
  end)
end)
