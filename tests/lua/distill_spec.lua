-- distill_spec.lua: the distillation loss (lesson 15): KL of softened outputs against a hand
-- computation, T^2 and alpha weighting, no gradient into the teacher, and distill.train's determinism.
local chalk = require "chalk"
local nn, distill = chalk.nn, chalk.efficiency.distill

local function softmax(row, T)
  local m, z, p = -math.huge, 0, {}
  for _, v in ipairs(row) do m = math.max(m, v / T) end
  for i, v in ipairs(row) do p[i] = math.exp(v / T - m); z = z + p[i] end
  for i in ipairs(p) do p[i] = p[i] / z end
  return p
end

describe("distill.kl and distill.loss", function()
  local s_rows = { { 1, 2, 0.5, -1 }, { 0, 0, 3, 1 } }
  local t_rows = { { 2, 1, 0, 0 }, { -1, 0, 4, 0.5 } }

  for _, T in ipairs { 1, 2, 4 } do
    it(("KL(softmax(t/T) || softmax(s/T)) equals a hand computation at T = %d"):format(T), function()
      local want = 0
      for r = 1, 2 do
        local p, q = softmax(t_rows[r], T), softmax(s_rows[r], T)
        for i = 1, 4 do want = want + p[i] * (math.log(p[i]) - math.log(q[i])) end
      end
      want = want / 2
      local got = distill.kl(chalk.tensor(s_rows, { dtype = "f64" }), chalk.tensor(t_rows, { dtype = "f64" }), T):item()
      assert.is_true(math.abs(got - want) < 1e-12, ("%g vs %g"):format(got, want))
    end)
  end

  it("is 0 for equal logits and alpha x T^2 x KL + (1 - alpha) x CE otherwise", function()
    local s, t = chalk.tensor(s_rows, { dtype = "f64" }), chalk.tensor(t_rows, { dtype = "f64" })
    local y = chalk.tensor({ 2, 3 }, { dtype = "i64" })
    assert.is_true(math.abs(distill.kl(s, s, 3):item()) < 1e-15)
    local got = distill.loss(s, t, y, { temperature = 3, alpha = 0.7 }):item()
    local want = 0.7 * 9 * distill.kl(s, t, 3):item() + 0.3 * chalk.cross_entropy(s, y):item()
    assert.is_true(math.abs(got - want) < 1e-12)
    assert.is_true(math.abs(distill.loss(s, t, y, { alpha = 0 }):item() - chalk.cross_entropy(s, y):item()) < 1e-12)
  end)

  it("sends gradients to the student only", function()
    local s = chalk.tensor(s_rows); s.requires_grad = true
    local t = chalk.tensor(t_rows); t.requires_grad = true
    distill.loss(s, t, chalk.tensor({ 1, 1 }, { dtype = "i64" })):backward()
    assert.is_not_nil(s.grad)
    assert.is_true(s.grad:abs():sum():item() > 0)
    assert.is_nil(t.grad)
  end)
end)

describe("distill.train", function()
  it("gives the same student for the same seed, and a different one with a teacher", function()
    local X, Y = chalk.randn(64, 6), chalk.randint(1, 4, { 64 })
    local function student() chalk.manual_seed(3); return nn.Sequential { nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3) } end
    chalk.manual_seed(4)
    local teacher = nn.Sequential { nn.Linear(6, 3) }
    local a, b, c = student(), student(), student()
    local la = distill.train(a, X, Y, { steps = 10, batch = 16, seed = 5 })
    local lb = distill.train(b, X, Y, { steps = 10, batch = 16, seed = 5 })
    distill.train(c, X, Y, { steps = 10, batch = 16, seed = 5, teacher = teacher })
    assert.are.same(la, lb)
    assert.are.same(a["1"].weight:totable(), b["1"].weight:totable())
    assert.are_not.same(a["1"].weight:totable(), c["1"].weight:totable())
  end)
end)
