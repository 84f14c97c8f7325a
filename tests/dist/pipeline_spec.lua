-- pipeline_spec.lua: dist.pipeline: step counts, bubbles and in-flight activations exactly against
-- their laws, a broken schedule caught, and a real pipelined forward/backward on simulated workers
-- whose gradients equal unsplit training (busted, make check-dist).
local chalk = require "chalk"
local dist, nn = chalk.dist, chalk.nn

describe("dist.pipeline schedules", function()
  it("take 2(m + p - 1) steps with bubble (p - 1)/(m + p - 1) for GPipe and 1F1B (p = 8, m = 32)", function()
    for _, k in ipairs{"gpipe", "1f1b"} do
      local s = dist.pipeline{stages = 8, microbatches = 32, schedule = k}
      assert.are.equal(78, s.steps)
      assert.is_true(math.abs(s.bubble - 7 / 39) < 1e-12)
      assert.are.equal("0.179", ("%.3f"):format(s.bubble))
      for st = 1, 8 do assert.are.equal(k == "gpipe" and 32 or 8 - st + 1, s.inflight[st]) end
    end
  end)
  it("interleave v chunks with idle/compute (p - 1)/(v m)", function()
    for _, c in ipairs{{8, 32, 2}, {4, 8, 2}, {4, 8, 4}, {4, 12, 3}} do
      local p, m, v = c[1], c[2], c[3]
      local s = dist.pipeline{stages = p, microbatches = m, schedule = "interleaved", chunks = v}
      assert.is_true(math.abs(s.ratio - (p - 1) / (v * m)) < 1e-12, ("p=%d m=%d v=%d: %g"):format(p, m, v, s.ratio))
      assert.are.equal(m + (p - 1) / v, s.steps / 2)
    end
  end)
  it("fails loudly on a schedule that breaks a dependency", function()
    local s = dist.pipeline{stages = 4, microbatches = 4, schedule = "1f1b"}
    for _, c in ipairs(s.grid) do -- stage 2 delays F of micro-batch 3 to its idle tick 5; stage 3 does not wait
      if c.kind == "F" and c.mb == 3 and c.stage == 2 then assert.are.equal(3, c.t); c.t = 5 end
      if c.kind == "F" and c.mb == 3 and c.stage == 3 then assert.are.equal(6, c.t); c.t = 4 end
    end
    local ok, err = pcall(s.check, s)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("breaks a dependency: stage 3 runs F of micro%-batch 3"))
    local s2 = dist.pipeline{stages = 4, microbatches = 4, schedule = "gpipe"}
    for _, c in ipairs(s2.grid) do -- a backward before the next stage's backward
      if c.stage == 2 and c.kind == "B" and c.mb == 1 then c.t = 8 end
    end
    ok, err = pcall(s2.check, s2)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("receiving its gradient"))
    s = dist.pipeline{stages = 4, microbatches = 4, schedule = "1f1b"}
    s.grid[1].t = s.grid[2].t -- two ops at once on stage 1
    assert.are.equal(1, s.grid[2].stage)
    assert.has_error(function() s:check() end)
    assert.has_error(function() dist.pipeline{stages = 4, microbatches = 6, schedule = "interleaved", chunks = 2} end)
  end)
end)

-- V layers tanh(W x + b) of width 6, the last one's output against a target, 12 rows in m micro-batches
local P = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "pipeline_net.lua")
local function model(V) return P.net(V, 6, 12, 7) end
local fwd = P.run_layers

describe("a pipeline run on simulated workers", function()
  for _, k in ipairs{"gpipe", "1f1b", "interleaved"} do
    it(k .. " gives the gradients of unsplit training", function()
      local p, m, v = 3, 3, k == "interleaved" and 2 or 1
      local s = dist.pipeline{stages = p, microbatches = m, schedule = k, chunks = v}
      local ref, X, Y = model(p * v)
      nn.functional.mse_loss(fwd(ref, 1, p * v, X), Y):backward()
      local res = dist.run(p, function(w)
        local layers, x, y = model(p * v)
        local losses = s:execute(w, {
          module = function(c) local vs = (c - 1) * p + w.rank; return function(a) return fwd(layers, vs, vs, a) end end,
          input = function(i) return x:narrow(1, (i - 1) * 4 + 1, 4) end,
          target = function(i) return y:narrow(1, (i - 1) * 4 + 1, 4) end,
          shape = function() return {4, 6} end,
          loss = nn.functional.mse_loss})
        local g = {}
        for c = 1, v do g[c] = layers[(c - 1) * p + w.rank].weight.grad end
        return {g = g, losses = losses}
      end)
      for r = 1, p do
        for c = 1, v do
          local d = (res[r].g[c] - ref[(c - 1) * p + r].weight.grad):abs():max():item()
          assert.is_true(d < 1e-6, ("rank %d chunk %d: %g"):format(r, c, d))
        end
      end
      assert.are.equal(m, #res[v == 1 and p or p].losses)
    end)
  end
end)
