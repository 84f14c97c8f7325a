-- zero_spec.lua: dist.ZeRO stages 0-3 on 4 simulated ranks: each stage's losses equal stage 0's, model
-- states per rank measured by the allocator equal 16 Pp; 4 Pp + 12 Pp/N; 2 Pp + 14 Pp/N; 16 Pp/N (Pp:
-- the padded count), the comm buffer apart (measured, category comm_buffer); elements sent per rank per
-- step 2 (N-1)/N Pp; FSDP (stage 3 by modules): 3 (N-1)/N Pp, the same losses, gathers freed (busted).
local chalk = require "chalk"
local dist, nn, optim = chalk.dist, chalk.nn, chalk.optim

-- 5 Adam steps of a 10 -> 24 -> 3 tanh MLP, rank r on rows of a batch of 16; B = 8 per rank per bucket
local function train(stage, N, dtype, fsdp)
  return dist.run(N, function(w)
    chalk.manual_seed(3)
    local W1, W2 = chalk.randn(24, 10):requires_grad_(true), chalk.randn(3, 24):requires_grad_(true)
    local X, Y = chalk.randn(16, 10), chalk.randn(16, 3)
    local z = dist.ZeRO(optim.Adam({W1, W2}, {lr = 1e-2}), w, {stage = stage, bucket = 8, dtype = dtype,
                                                                   modules = fsdp and {{1}, {2}} or nil})
    local rows = 16 // N
    local x, y = X:narrow(1, (w.rank - 1) * rows + 1, rows), Y:narrow(1, (w.rank - 1) * rows + 1, rows)
    local losses, sent = {}, nil
    for s = 1, 5 do
      w:reset_stats()
      local lin = function(h, p) return chalk.matmul(h, p[1]:to("f32"):transpose(1, 2)) end
      local loss
      if fsdp then
        loss = z:fsdp_step(x, {function(h, p) return chalk.tanh(lin(h, p)) end, lin},
                           function(o) return nn.functional.mse_loss(o, y) end)
        z:step()
      else
        local p = z:gather()
        loss = nn.functional.mse_loss(lin(chalk.tanh(lin(x, {p[1]})), {p[2]}), y)
        loss:backward()
        z:step()
        loss = loss:item()
      end
      sent = 0
      for _, algos in pairs(w:stats().by) do for _, st in pairs(algos) do sent = sent + st.sent end end
      losses[s] = loss
    end
    return {losses = losses, mem = z:memory(), sent = sent, timeline = z.timeline}
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
  it("FSDP (stage 3 by modules): losses equal stage 0's, 3 (N-1)/N Pp sent, gathers freed after use", function()
    local b, f = train(0, N, "bf16"), train(3, N, "bf16", true)
    for r = 1, N do
      local m = f[r].mem
      assert.are.equal(312, m.P)
      assert.are.equal(8 * 32 + 3 * 32, m.Pp) -- W1 240 -> 8 buckets of N B = 32, W2 72 -> 3: apart
      assert.are.equal(16 * m.Pp // N, m.parameter + m.gradient + m.optimizer)
      assert.are.equal(3 * (N - 1) * m.Pp // N * 4, f[r].sent)
      for s = 1, 5 do assert.is_true(math.abs(f[r].losses[s] - b[r].losses[s]) <= 1e-3 * b[r].losses[s]) end
      -- gather 1, gather 2 (prefetch), forward 1, free 1, ...: the gathered bytes return to the buffer's
      local kinds, tl = {}, f[r].timeline
      for i, e in ipairs(tl) do kinds[i] = e.kind .. e.module end
      assert.are.equal("gather1 gather2 forward1 free1 forward2 free2 gather2 gather1 backward2 free2 backward1 free1",
                       table.concat(kinds, " "))
      assert.are.equal(4 * N * 8, tl[#tl].comm)
      assert.are.equal(4 * N * 8 + 2 * 256 + 2 * 96, tl[2].comm) -- both modules gathered (16-bit)
    end
  end)
  it("refuses a stage that does not exist", function()
    assert.has_error(function()
      dist.run(2, function(w) dist.ZeRO(optim.Adam({chalk.zeros(4):requires_grad_(true)}), w, {stage = 4}) end)
    end)
  end)
end)
