-- views_spec.lua: views share storage with their base (writing through one changes the other),
-- dims are 1-based with negatives from the end, and shapes/strides come out as torch's.
local chalk = require "chalk"
local S = require "support"

local function grid()
  return chalk.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
end

describe("views", function()
  it("view shares storage: writing through the view changes the base", function()
    local x = grid()
    local v = x:view(3, 2)
    assert.are.same({ 3, 2 }, v.shape)
    v[{ 3, 2 }] = 60
    assert.are.equal(60, x[{ 2, 3 }]:item())
    x[1] = 0
    assert.are.same({ { 0, 0 }, { 0, 4 }, { 5, 60 } }, v:totable())
  end)

  it("view takes -1 and a table; reshape copies only when it must", function()
    local x = grid()
    assert.are.same({ 6 }, x:view(-1).shape)
    assert.are.same({ 3, 2 }, x:view({ 3, -1 }).shape)
    local t = x.T
    S.error_matching(function() t:view(6) end, "view")
    local r = t:reshape(6)
    assert.are.same({ 1, 4, 2, 5, 3, 6 }, r:totable())
    r[1] = 100 -- a copy: x is unchanged
    assert.are.equal(1, x[{ 1, 1 }]:item())
    local r2 = x:reshape(3, 2) -- contiguous: a view
    r2[{ 1, 1 }] = 100
    assert.are.equal(100, x[{ 1, 1 }]:item())
  end)

  it("transpose, T and permute swap strides without copying", function()
    local x = grid()
    local t = x:transpose(1, 2)
    assert.are.same({ 3, 2 }, t.shape)
    assert.are.same({ 1, 3 }, t:stride())
    assert.is_false(t:is_contiguous())
    t[{ 3, 1 }] = 30
    assert.are.equal(30, x[{ 1, 3 }]:item())
    assert.are.same(t:totable(), x.T:totable())
    assert.are.same(t:totable(), x:t():totable())
    local y = chalk.zeros(2, 3, 4)
    assert.are.same({ 4, 2, 3 }, y:permute(3, 1, 2).shape)
    assert.are.same({ 4, 2, 3 }, y:permute({ -1, 1, 2 }).shape)
    assert.are.same({ 4, 3, 2 }, y.T.shape)
  end)

  it("narrow takes a 1-based start (negative from the end) and a length", function()
    local x = chalk.arange(1, 11) -- 1..10
    assert.are.same({ 3, 4, 5 }, x:narrow(1, 3, 3):totable())
    assert.are.same({ 9, 10 }, x:narrow(1, -2, 2):totable())
    local n = x:narrow(1, 2, 2)
    n[1] = 0
    assert.are.equal(0, x[2]:item())
    S.error_matching(function() x:narrow(1, 0, 2) end, "start 0 is invalid")
    S.error_matching(function() x:narrow(1, 9, 5) end, "out of bounds")
  end)

  it("select removes the dim; the index is 1-based", function()
    local x = grid()
    assert.are.same({ 2, 5 }, x:select(2, 2):totable())
    assert.are.same({ 4, 5, 6 }, x:select(1, -1):totable())
    S.error_matching(function() x:select(1, 3) end, "index 3 is out of range for dim 1 of size 2")
  end)

  it("expand broadcasts size-1 dims with stride 0 (no copy)", function()
    local c = chalk.tensor { { 1 }, { 2 } }
    local e = c:expand(2, 3)
    assert.are.same({ { 1, 1, 1 }, { 2, 2, 2 } }, e:totable())
    assert.are.same({ 1, 0 }, e:stride())
    assert.are.same({ 2, 3 }, c:expand(-1, 3).shape)
    assert.are.same({ 2, 3 }, c:expand_as(chalk.zeros(2, 3)).shape)
  end)

  it("unsqueeze and squeeze", function()
    local v = chalk.tensor { 1, 2, 3 }
    assert.are.same({ 1, 3 }, v:unsqueeze(1).shape)
    assert.are.same({ 3, 1 }, v:unsqueeze(2).shape)
    assert.are.same({ 3, 1 }, v:unsqueeze(-1).shape)
    local z = chalk.zeros(1, 3, 1)
    assert.are.same({ 3 }, z:squeeze().shape)
    assert.are.same({ 3, 1 }, z:squeeze(1).shape)
    assert.are.same({ 1, 3 }, z:squeeze(-1).shape)
  end)

  it("flatten, contiguous, clone, detach", function()
    local y = chalk.zeros(2, 3, 4)
    assert.are.same({ 24 }, y:flatten().shape)
    assert.are.same({ 2, 12 }, y:flatten(2).shape)
    assert.are.same({ 6, 4 }, y:flatten(1, 2).shape)
    local t = grid().T
    local c = t:contiguous()
    assert.is_true(c:is_contiguous())
    assert.are.same(t:totable(), c:totable())
    local x = grid()
    local k = x:clone()
    k[1] = 0
    assert.are.same({ 1, 2, 3 }, x[1]:totable())
    local d = x:detach()
    d[1] = 0
    assert.are.same({ 0, 0, 0 }, x[1]:totable())
  end)

  it("size, stride and # count dims from 1 and from the end", function()
    local x = chalk.zeros(2, 3, 4)
    assert.are.same({ 2, 3, 4 }, x:size())
    assert.are.equal(3, x:size(2))
    assert.are.equal(4, x:size(-1))
    assert.are.same({ 12, 4, 1 }, x:stride())
    assert.are.equal(12, x:stride(1))
    assert.are.equal(2, #x)
    assert.are.equal(3, x.ndim)
    S.error_matching(function() x:size(0) end, "dim 0 is invalid: dims count from 1")
    S.error_matching(function() x:size(4) end, "dim 4 is out of range for a tensor of 3 dims")
    S.error_matching(function() return #chalk.tensor(1) end, "0-d tensor has no length")
  end)

  it("shape tables print as {2,3} and compare by value", function()
    local x = chalk.zeros(2, 3)
    assert.are.equal("{2,3}", tostring(x.shape))
    assert.is_true(x.shape == chalk.ones(2, 3).shape)
    assert.is_false(x.shape == chalk.ones(3, 2).shape)
  end)
end)
