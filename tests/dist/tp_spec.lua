-- tp_spec.lua: tensor parallelism: ColumnLinear / RowLinear shards and the Megatron MLP (f, g) on 1, 2
-- and 4 simulated ranks equal the unsplit MLP (outputs, input and weight gradients, 1e-6); one
-- all-reduce per MLP forward and one backward, counted from the collective events (busted, check-dist).
local chalk = require "chalk"
local dist, nn = chalk.dist, chalk.nn

local function setup()
  chalk.manual_seed(5)
  local fc1, fc2 = nn.Linear(8, 32), nn.Linear(32, 8)
  local X = chalk.randn(6, 8):requires_grad_(true)
  local Y = fc2(chalk.tanh(fc1(X)))
  Y:sum():backward()
  return fc1, fc2, X, Y
end
local function maxdiff(a, b) return (a - b):abs():max():item() end

describe("tensor-parallel MLP", function()
  for _, n in ipairs{1, 2, 4} do
    it(("on %d ranks equals the unsplit MLP"):format(n), function()
      local fc1, fc2, X, Y = setup()
      local res = dist.run(n, function(w)
        local mlp = dist.TensorParallelMLP(fc1, fc2, w)
        local x = X:detach():clone():requires_grad_(true)
        local y = mlp(x)
        y:sum():backward()
        mlp:backward()
        return {y = y:detach(), gx = x.grad, g1 = mlp.fc1.weight.grad, g2 = mlp.fc2.weight.grad,
                b1 = mlp.fc1.bias.grad, b2 = mlp.fc2.bias.grad}
      end)
      local k = 32 // n
      for r = 1, n do
        assert.is_true(maxdiff(res[r].y, Y) < 1e-6)
        assert.is_true(maxdiff(res[r].gx, X.grad) < 1e-6)
        assert.is_true(maxdiff(res[r].g1, fc1.weight.grad:narrow(1, (r - 1) * k + 1, k)) < 1e-6)
        assert.is_true(maxdiff(res[r].b1, fc1.bias.grad:narrow(1, (r - 1) * k + 1, k)) < 1e-6)
        assert.is_true(maxdiff(res[r].g2, fc2.weight.grad:narrow(2, (r - 1) * k + 1, k)) < 1e-6)
        assert.is_true(maxdiff(res[r].b2, fc2.bias.grad) < 1e-6)
      end
    end)
  end
  it("all-reduces once forward (g) and once backward (f), counted from events", function()
    local fc1, fc2, X = setup()
    local function count(backward)
      local prof = chalk.profile(function()
        dist.run(4, function(w)
          local mlp = dist.TensorParallelMLP(fc1, fc2, w)
          local y = mlp(X:detach():clone():requires_grad_(true))
          if backward then y:sum():backward(); mlp:backward() end
        end)
      end)
      local per = {0, 0, 0, 0}
      for _, e in ipairs(prof:events()) do
        if e.kind == "collective" then assert.are.equal("all_reduce", e.name); per[e.rank] = per[e.rank] + 1 end
      end
      return per
    end
    assert.are.same({1, 1, 1, 1}, count(false))
    assert.are.same({2, 2, 2, 2}, count(true))
  end)
  it("a transformer layer (attention split by heads, then the MLP) equals unsplit; 2 + 2 all-reduces", function()
    local tp = require "chalk.tp"
    chalk.manual_seed(4)
    local d, h = 16, 4
    local wq, wk, wv = nn.Linear(d, d, {bias = false}), nn.Linear(d, d, {bias = false}), nn.Linear(d, d, {bias = false})
    local wo, fc1, fc2 = nn.Linear(d, d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
    for _, m in ipairs{wq, wk, wv, wo, fc1, fc2} do m:to("f64") end
    local X = chalk.randn({6, d}, {dtype = "f64"}):requires_grad_(true)
    local Y = fc2(chalk.tanh(fc1(wo(tp.attention_heads(X, wq.weight, wk.weight, wv.weight, h)))))
    Y:sum():backward()
    for _, n in ipairs{2, 4} do
      local fwd, res = {}, nil
      local prof = chalk.profile(function()
        res = dist.run(n, function(w)
          local att = dist.TensorParallelAttention(wq, wk, wv, wo, h, w)
          local mlp = dist.TensorParallelMLP(fc1, fc2, w)
          local x = X:detach():clone():requires_grad_(true)
          local y = mlp(att(x))
          fwd[w.rank] = w:stats().by.all_reduce.ring.calls
          y:sum():backward(); mlp:backward(); att:backward()
          return {y = y:detach(), gx = x.grad, gq = att.q.weight.grad, gv = att.v.weight.grad, go = att.o.weight.grad}
        end)
      end)
      local k = d // n
      for r = 1, n do
        assert.is_true(maxdiff(res[r].y, Y) < 1e-6 and maxdiff(res[r].gx, X.grad) < 1e-6)
        assert.is_true(maxdiff(res[r].gq, wq.weight.grad:narrow(1, (r - 1) * k + 1, k)) < 1e-6)
        assert.is_true(maxdiff(res[r].gv, wv.weight.grad:narrow(1, (r - 1) * k + 1, k)) < 1e-6)
        assert.is_true(maxdiff(res[r].go, wo.weight.grad:narrow(2, (r - 1) * k + 1, k)) < 1e-6)
        assert.are.equal(2, fwd[r])
      end
      local per = {}
      for _, e in ipairs(prof:events()) do
        if e.kind == "collective" then per[e.rank] = (per[e.rank] or 0) + 1 end
      end
      for r = 1, n do assert.are.equal(4, per[r]) end
    end
  end)
  it("refuses a shard that does not divide", function()
    local fc = nn.Linear(6, 6)
    assert.has_error(function() dist.run(4, function(w) return dist.ColumnLinear(fc, w) end) end)
  end)
end)
