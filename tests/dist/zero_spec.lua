-- zero_spec.lua: dist.ZeRO stages 0-3 on 4 simulated ranks: each stage's losses equal stage 0's, model
-- states per rank measured by the allocator equal 16 Pp; 4 Pp + 12 Pp/N; 2 Pp + 14 Pp/N; 16 Pp/N (Pp:
-- the padded count), the comm buffer apart; elements sent per rank per step 2 (N-1)/N Pp (busted).
local chalk = require "chalk"
local dist, nn, optim = chalk.dist, chalk.nn, chalk.optim

-- 5 Adam steps of a 10 -> 24 -> 3 tanh MLP, rank r on rows of a batch of 16; B = 8 per rank per bucket
local function train(stage, N, dtype)
  return dist.run(N, function(w)
    chalk.manual_seed(3)
    local W1, W2 = chalk.randn(24, 10):requires_grad_(true), chalk.randn(3, 24):requires_grad_(true)
    local X, Y = chalk.randn(16, 10), chalk.randn(16, 3)
    local z = dist.ZeRO(optim.Adam({W1, W2}, {lr = 1e-2}), w, {stage = stage, bucket = 8, dtype = dtype})
    local rows = 16 // N
    local x, y = X:narrow(1, (w.rank - 1) * rows + 1, rows), Y:narrow(1, (w.rank - 1) * rows + 1, rows)
    local losses, sent = {}, nil
    for s = 1, 5 do
      w:reset_stats()
      local p = z:gather()
      local h = chalk.tanh(chalk.matmul(x, p[1]:to("f32"):transpose(1, 2)))
      local loss = nn.functional.mse_loss(chalk.matmul(h, p[2]:to("f32"):transpose(1, 2)), y)
      loss:backward()
      z:step()
      sent = 0
      for _, algos in pairs(w:stats().by) do for _, st in pairs(algos) do sent = sent + st.sent end end
      losses[s] = loss:item()
    end
    return {losses = losses, mem = z:memory(), sent = sent}
  end)
end

describe("dist.ZeRO", function()
  local N, base = 4, nil
  for _, dtype in ipairs{"bf16", "f16"} do
    it(dtype .. ": every stage's losses equal stage 0's; model states per rank follow the law", function()
      local law = {function(P) return 16 * P end, function(P) return 4 * P + 12 * P // N end,
                   function(P) return 2 * P + 14 * P // N end, function(P) return 16 * P // N end}
      for stage = 0, 3 do
        local res = train(stage, N, dtype)
        if stage == 0 then base = res end
        for r = 1, N do
          local m = res[r].mem
          assert.are.equal(312, m.P)
          assert.are.equal(320, m.Pp) -- padded to K N B = 10 x 4 x 8
          assert.are.equal(law[stage + 1](m.Pp), m.parameter + m.gradient + m.optimizer)
          assert.are.equal(4 * N * 8, m.comm)
          for s = 1, 5 do assert.is_true(math.abs(res[r].losses[s] - base[r].losses[s]) <= 1e-3 * base[r].losses[s]) end
          -- f32 elements through the comm buffer: 2 (N-1)/N Pp per step (stage 3 here too, see zero.lua)
          assert.are.equal(2 * (N - 1) * m.Pp // N * 4, res[r].sent, dtype .. " stage " .. stage)
        end
      end
    end)
  end
  it("refuses a stage that does not exist", function()
    assert.has_error(function()
      dist.run(2, function(w) dist.ZeRO(optim.Adam({chalk.zeros(4):requires_grad_(true)}), w, {stage = 4}) end)
    end)
  end)
end)
